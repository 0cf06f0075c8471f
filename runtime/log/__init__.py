"""The built-in log: topic partitions as segment files of Kafka record batches."""
