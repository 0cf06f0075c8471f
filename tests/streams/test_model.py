from __future__ import annotations

import enum
import inspect
from datetime import UTC, datetime
from typing import ClassVar, Optional

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codec import get_codec
from streams.errors import ModelError
from streams.model import FieldDescriptor, Record, fields


class Ride(Record):
    zone: str
    rider: str
    fare: float = 0.0


class Point(Record):
    x: int
    y: int


class Trip(Record):
    ride: Ride
    path: list[Point] = []
    tags: dict[str, Point] = {}
    started: datetime | None = None
    note: Optional[str] = None  # noqa: UP045 (the typing spelling must work too)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


# --- declaration ---------------------------------------------------------------------


def test_keyword_and_positional_in_declaration_order() -> None:
    assert Ride(zone="a", rider="b") == Ride("a", "b") == Ride("a", "b", 0.0)
    ride = Ride("a", "b", fare=2.5)
    assert (ride.zone, ride.rider, ride.fare) == ("a", "b", 2.5)


def test_missing_required_field_names_it() -> None:
    with pytest.raises(TypeError, match=r"Ride.*missing required field 'rider'"):
        Ride(zone="a")


def test_unknown_and_extra_arguments() -> None:
    with pytest.raises(TypeError, match="colour"):
        Ride("a", "b", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Ride("a", "b", 1.0, "extra")  # type: ignore[call-arg]


def test_signature_lists_fields() -> None:
    assert list(inspect.signature(Ride).parameters) == ["zone", "rider", "fare"]


def test_mutable_defaults_are_not_shared() -> None:
    a, b = Trip(Ride("a", "b")), Trip(Ride("a", "b"))
    a.path.append(Point(1, 2))
    assert b.path == []
    assert Trip.from_dict({"ride": {"zone": "a", "rider": "b"}}).path == []


def test_instances_are_mutable_and_compare_like_dataclasses() -> None:
    ride = Ride("a", "b")
    ride.fare = 3.0
    assert ride == Ride("a", "b", 3.0)
    assert ride != Ride("a", "b")
    assert ride != ("a", "b", 3.0)
    assert repr(ride) == "Ride(zone='a', rider='b', fare=3.0)"
    with pytest.raises(TypeError, match="unhashable"):
        hash(ride)


def test_class_vars_and_methods_are_not_fields() -> None:
    class Counted(Record):
        kind: ClassVar[str] = "counted"
        n: int

        def double(self) -> int:
            return self.n * 2

    assert [f.name for f in fields(Counted)] == ["n"]
    assert Counted(2).double() == 4
    assert Counted.kind == "counted"


@pytest.mark.parametrize("name", ["to_dict", "dumps", "__weird__"])
def test_reserved_field_names_rejected(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        type("Bad", (Record,), {"__annotations__": {name: "int"}})


def test_user_init_is_kept() -> None:
    class Pair(Record):
        a: int
        b: int

        def __init__(self, both: int) -> None:
            self.a = self.b = both

    assert Pair(3).b == 3
    assert Pair.from_dict({"a": 1, "b": 2}).b == 2


def test_match_args() -> None:
    match Ride("a", "b"):
        case Ride(zone, rider):
            assert (zone, rider) == ("a", "b")
        case _:
            pytest.fail("no match")


# --- descriptors ---------------------------------------------------------------------


def test_class_access_returns_descriptor() -> None:
    field = Ride.zone
    assert isinstance(field, FieldDescriptor)
    assert (field.name, field.model, field.type) == ("zone", Ride, str)
    assert field.required and not Ride.fare.required
    assert Ride.fare.default == 0.0
    assert field.getter(Ride("a", "b")) == "a"
    assert repr(field) == "<FieldDescriptor Ride.zone: str>"


def test_descriptor_is_non_data_so_instance_dict_wins() -> None:
    assert not hasattr(FieldDescriptor, "__set__")
    ride = Ride("a", "b")
    assert vars(ride) == {"zone": "a", "rider": "b", "fare": 0.0}
    del ride.zone
    with pytest.raises(AttributeError, match="zone"):
        _ = ride.zone


def test_fields_in_declaration_order() -> None:
    assert [f.name for f in fields(Ride)] == ["zone", "rider", "fare"]
    assert fields(Ride("a", "b")) == fields(Ride)


# --- inheritance ---------------------------------------------------------------------


class PremiumRide(Ride):
    fare = 10.0  # a new default for an inherited field
    lounge: bool = False


def test_inherited_fields_come_first_and_defaults_override() -> None:
    assert [f.name for f in fields(PremiumRide)] == ["zone", "rider", "fare", "lounge"]
    ride = PremiumRide("a", "b")
    assert (ride.fare, ride.lounge) == (10.0, False)
    assert Ride("a", "b").fare == 0.0
    assert PremiumRide.zone.model is PremiumRide and Ride.zone.model is Ride
    assert PremiumRide.from_dict({"zone": "a", "rider": "b", "lounge": True}).lounge is True
    assert ride != Ride("a", "b", 10.0)  # different classes


def test_reannotated_field_keeps_position_and_takes_new_type() -> None:
    class Loose(Point):
        x: float  # type: ignore[assignment]

    assert [f.name for f in fields(Loose)] == ["x", "y"]
    assert Loose.from_dict({"x": 1, "y": 2}).x == 1.0
    assert isinstance(Loose.from_dict({"x": 1, "y": 2}).x, float)


# --- from_dict -----------------------------------------------------------------------


def test_from_dict_coerces_nested_records_lists_dicts_and_datetimes() -> None:
    trip = Trip.from_dict(
        {
            "ride": {"zone": "a", "rider": "b", "fare": 3},
            "path": [{"x": 1, "y": 2}, Point(3, 4)],
            "tags": {"home": {"x": 0, "y": 0}},
            "started": "2024-05-01T12:30:00+00:00",
            "unknown": "ignored",
        }
    )
    assert trip.ride == Ride("a", "b", 3.0)
    assert isinstance(trip.ride.fare, float)
    assert trip.path == [Point(1, 2), Point(3, 4)]
    assert trip.tags == {"home": Point(0, 0)}
    assert trip.started == datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert trip.note is None


def test_from_dict_optional_fields_take_none() -> None:
    trip = Trip.from_dict({"ride": Ride("a", "b"), "started": None, "note": None})
    assert trip.started is None and trip.note is None


def test_from_dict_integral_float_for_int_field() -> None:
    assert Point.from_dict({"x": 1.0, "y": 2}) == Point(1, 2)


def test_from_dict_enum() -> None:
    class Paint(Record):
        color: Color

    assert Paint.from_dict({"color": "red"}).color is Color.RED
    with pytest.raises(ModelError, match=r"Paint\.color"):
        Paint.from_dict({"color": "green"})


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (Ride, {"zone": {}, "rider": "b"}, "zone"),
        (Ride, {"zone": None, "rider": "b"}, "zone"),
        (Ride, {"zone": "a", "rider": "b", "fare": "cheap"}, "fare"),
        (Ride, {"zone": "a", "rider": "b", "fare": True}, "fare"),
        (Point, {"x": True, "y": 1}, "x"),
        (Point, {"x": 1.5, "y": 1}, "x"),
        (Trip, {"ride": "a ride"}, "ride"),
        (Trip, {"ride": {"zone": "a", "rider": "b"}, "path": {"x": 1}}, "path"),
        (Trip, {"ride": {"zone": "a", "rider": "b"}, "path": [1]}, "path"),
        (Trip, {"ride": {"zone": "a", "rider": "b"}, "started": "yesterday"}, "started"),
        (Trip, {"ride": {"zone": "a", "rider": "b"}, "started": 5}, "started"),
    ],
)
def test_from_dict_wrong_type_is_a_model_error(
    model: type[Record], data: dict[str, object], field: str
) -> None:
    with pytest.raises(ModelError, match=f"{model.__name__}.{field}") as info:
        model.from_dict(data)
    assert (info.value.model, info.value.field) == (model.__name__, field)


def test_from_dict_missing_required_field() -> None:
    with pytest.raises(ModelError, match="Ride: missing required field 'rider'") as info:
        Ride.from_dict({"zone": "a"})
    assert (info.value.model, info.value.field) == ("Ride", "rider")


def test_from_dict_nested_missing_field_names_the_nested_model() -> None:
    with pytest.raises(ModelError, match="Point: missing required field 'y'"):
        Trip.from_dict({"ride": {"zone": "a", "rider": "b"}, "path": [{"x": 1}]})


def test_from_dict_needs_a_mapping() -> None:
    with pytest.raises(ModelError, match="expected a mapping"):
        Ride.from_dict(["a", "b"])  # type: ignore[arg-type]
    assert isinstance(ModelError("x"), ValueError)


# --- serialization -------------------------------------------------------------------


def test_to_dict_nests() -> None:
    trip = Trip(Ride("a", "b"), path=[Point(1, 2)], tags={"h": Point(0, 0)})
    assert trip.to_dict() == {
        "ride": {"zone": "a", "rider": "b", "fare": 0.0},
        "path": [{"x": 1, "y": 2}],
        "tags": {"h": {"x": 0, "y": 0}},
        "started": None,
        "note": None,
    }


def test_dumps_loads_roundtrip() -> None:
    trip = Trip(Ride("a", "b", 1.5), [Point(1, 2)], started=datetime(2024, 1, 2, 3, 4, 5))
    data = trip.dumps()
    assert orjson.loads(data)["started"] == "2024-01-02T03:04:05"
    assert Trip.loads(data) == trip


def test_roundtrip_through_json_codec() -> None:
    codec = get_codec("json")
    trip = Trip(Ride("a", "b"), [Point(1, 2)], started=datetime(2024, 1, 2, tzinfo=UTC))
    assert Trip.from_dict(codec.loads(codec.dumps(trip))) == trip
    # a Record nested in a plain container is serialized too
    assert codec.loads(codec.dumps({"r": [Ride("a", "b")]})) == {
        "r": [{"zone": "a", "rider": "b", "fare": 0.0}]
    }


@given(
    st.text(),
    st.text(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))),
)
def test_roundtrip_property(
    zone: str, rider: str, fare: float, points: list[tuple[int, int]]
) -> None:
    trip = Trip(Ride(zone, rider, fare), [Point(x, y) for x, y in points])
    assert Trip.loads(trip.dumps()) == trip


# --- annotations naming other models -------------------------------------------------


def test_self_reference_in_a_function_body() -> None:
    class Tree(Record):
        label: str
        children: list[Tree] = []

    tree = Tree.from_dict({"label": "a", "children": [{"label": "b"}]})
    assert tree.children == [Tree("b")]
    assert Tree.children.type == list[Tree]


def test_reference_to_a_model_defined_later() -> None:
    class Order(Record):
        lines: list[Line]  # Line is defined below

    class Line(Record):
        sku: str

    assert Order.from_dict({"lines": [{"sku": "x"}]}).lines == [Line("x")]
    assert Order([Line("y")]).to_dict() == {"lines": [{"sku": "y"}]}


def test_unresolvable_annotation_fails_on_use() -> None:
    class Broken(Record):
        part: NoSuchModel  # type: ignore[name-defined]  # noqa: F821

    assert Broken(1).part == 1  # __init__ needs no types
    with pytest.raises(TypeError, match="NoSuchModel"):
        Broken.from_dict({"part": 1})
