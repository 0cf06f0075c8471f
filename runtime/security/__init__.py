"""Who a client is: SASL mechanisms (PLAIN, SCRAM), the users file, TLS contexts.

Nothing here does I/O on the network: the broker (runtime/broker/sasl.py) and,
later, the client drive these exchanges over their connections.

    errors.py   the errors, their tree in its docstring
    scram.py    RFC 5802/7677 SCRAM: credentials, the server and client exchanges
    plain.py    RFC 4616 PLAIN, verified against SCRAM credentials
    users.py    the users file: salted SCRAM credentials only, written atomically
    tls.py      server-side SSL contexts and the principal of a client certificate
"""
