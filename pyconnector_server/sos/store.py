"""SOS persistence: features, sensors, observed properties and observation values.

One implementation over SQLAlchemy serves SQLite and PostgreSQL. The only dialect
branch is the bulk write of observation values (:meth:`SosStore.write_values`): an
``executemany`` upsert on SQLite; on PostgreSQL ``COPY`` straight into the table when
every key is new, else ``COPY`` into a temporary table then one upsert. Every method
scopes its queries to one tenant.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pyconnector.times import format_tcup

if TYPE_CHECKING:
    import pyarrow as pa

from ..auth import Tenant
from ..db import Database, tenant
from ..deps import now_ms
from ..errors import APIError, bad_request, not_found
from . import validate as v
from .bodies import (
    FeatureIn,
    FeatureUpdate,
    Location,
    OutputIn,
    PropertyIn,
    PropertyUpdate,
    SensorIn,
    SensorUpdate,
)
from .commit import GroupCommit
from .tables import (
    feature,
    observation,
    observed_property,
    routing_outbox,
    sensor,
    sensor_member,
    sensor_output,
)


@dataclass(frozen=True)
class Prop:
    id: int
    name: str
    type: str


@dataclass(frozen=True)
class SensorRef:
    id: int
    name: str
    feature: str


Row = tuple[int, int, int, float | None, str | None]  # sensor, property, time, num, text
VALUE_COLUMNS = ("sensor_id", "property_id", "time_ms", "num", "text")


# Statements of the observation-insert path, built once (building one costs more than
# running it on SQLite).
_NAMED_REFS = (sa.select(sensor.c.id, sensor.c.name, feature.c.name.label("feature"))
               .join(feature, feature.c.id == sensor.c.feature_id)
               .where(sensor.c.tenant_id == sa.bindparam("tenant"),
                      sensor.c.name.in_(sa.bindparam("names", expanding=True))))
_PROPERTIES = (sa.select(observed_property.c.id, observed_property.c.name,
                         observed_property.c.type)
               .where(observed_property.c.tenant_id == sa.bindparam("tenant")))


def _location(loc: Location | None) -> dict[str, float] | None:
    """A location as the feature table keeps it (JSON, without an absent altitude)."""
    return None if loc is None else loc.model_dump(exclude_none=True)


class SosStore:
    """Tenant-scoped reads and writes of the SOS tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: observation inserts arriving together share a transaction and its commit
        self.group = GroupCommit(db)
        #: set by Message Routing when its broker is this process's own (the embedded
        #: router): outbox rows carry it, so another process never routes them
        self.outbox_origin: str | None = None

    # -- features ----------------------------------------------------------------------
    def _feature_id(self, conn: sa.Connection, t: Tenant, name: str) -> int | None:
        return conn.execute(sa.select(feature.c.id).where(
            feature.c.tenant_id == t.id, feature.c.name == name)).scalar()

    def _require_feature(self, conn: sa.Connection, t: Tenant, name: str, field: str) -> int:
        fid = self._feature_id(conn, t, name)
        if fid is None:
            raise APIError(404, f"{field}: feature {name!r} not found", field=field)
        return fid

    def create_feature(self, t: Tenant, body: FeatureIn, field: str = "feature"
                       ) -> dict[str, Any]:
        name = body.name
        values = {"description": body.description, "meta": body.metadata,
                  "location": _location(body.location)}
        with self.db.write() as conn:
            if self._feature_id(conn, t, name) is not None:
                raise APIError(409, f"feature {name!r} already exists", field=f"{field}.name")
            if body.parent is not None:
                values["parent_id"] = self._require_feature(conn, t, body.parent,
                                                            f"{field}.parent")
            ts = now_ms()
            conn.execute(sa.insert(feature).values(
                tenant_id=t.id, name=name, created_ms=ts, updated_ms=ts, **values))
        return {"code": 201, "message": f"feature {name!r} created", "name": name}

    def update_feature(self, t: Tenant, name: str, body: FeatureUpdate) -> dict[str, Any]:
        v.name(name, "name")
        given = body.given()
        values: dict[str, Any] = {}
        if "description" in given:
            values["description"] = body.description or ""
        if "metadata" in given:
            values["meta"] = body.metadata or {}
        if "location" in given:
            values["location"] = _location(body.location)
        if "parent" in given:
            values["parent"] = body.parent
        with self.db.write() as conn:
            fid = self._feature_id(conn, t, name)
            if fid is None:
                raise not_found(f"feature {name!r}")
            if "parent" in values:
                parent = values.pop("parent")
                pid = None if parent is None else self._require_feature(
                    conn, t, parent, "feature.parent")
                if pid is not None and fid in self._ancestors(conn, pid) | {pid}:
                    raise bad_request("feature.parent: would make a cycle", "feature.parent")
                values["parent_id"] = pid
            conn.execute(sa.update(feature).where(feature.c.id == fid).values(
                updated_ms=now_ms(), **values))
        return {"code": 200, "message": f"feature {name!r} updated"}

    def _ancestors(self, conn: sa.Connection, fid: int) -> set[int]:
        seen: set[int] = set()
        current: int | None = fid
        while current is not None and current not in seen:
            seen.add(current)
            current = conn.execute(
                sa.select(feature.c.parent_id).where(feature.c.id == current)).scalar()
        return seen - {fid}

    def _feature_query(self) -> sa.Select[Any]:
        parent = feature.alias("parent")
        return (sa.select(feature, parent.c.name.label("parent_name"))
                .outerjoin(parent, parent.c.id == feature.c.parent_id))

    @staticmethod
    def _feature_out(row: Any) -> dict[str, Any]:
        return {"name": row.name, "description": row.description, "parent": row.parent_name,
                "metadata": row.meta or {}, "location": row.location,
                "created": format_tcup(row.created_ms), "updated": format_tcup(row.updated_ms)}

    def get_feature(self, t: Tenant, name: str) -> dict[str, Any]:
        v.name(name, "name")
        with self.db.read() as conn:
            row = conn.execute(self._feature_query().where(
                feature.c.tenant_id == t.id, feature.c.name == name)).first()
        if row is None:
            raise not_found(f"feature {name!r}")
        return self._feature_out(row)

    def list_features(self, t: Tenant, parent: str | None = None, limit: int | None = None,
                      offset: int = 0) -> list[dict[str, Any]]:
        q = self._feature_query().where(feature.c.tenant_id == t.id)
        if parent is not None:
            v.name(parent, "parent")
        with self.db.read() as conn:
            if parent is not None:
                pid = self._feature_id(conn, t, parent)
                if pid is None:
                    raise not_found(f"feature {parent!r}")
                q = q.where(feature.c.parent_id == pid)
            rows = conn.execute(q.order_by(feature.c.name).limit(limit).offset(offset)).all()
        return [self._feature_out(r) for r in rows]

    def delete_feature(self, t: Tenant, name: str, cascade: bool = False) -> dict[str, Any]:
        v.name(name, "name")
        with self.db.write(bulk=True) as conn:  # may delete millions of values
            fid = self._feature_id(conn, t, name)
            if fid is None:
                raise not_found(f"feature {name!r}")
            todo, doomed = [fid], []
            while todo:
                current = todo.pop()
                doomed.append(current)
                children = conn.execute(sa.select(feature.c.id).where(
                    feature.c.parent_id == current)).scalars().all()
                sensors = conn.execute(sa.select(sensor.c.id).where(
                    sensor.c.feature_id == current)).scalars().all()
                if (children or sensors) and not cascade:
                    raise APIError(409, f"feature {name!r} has sensors or child features; "
                                        "delete them first or pass cascade=true")
                self._delete_sensors(conn, sensors)
                todo.extend(children)
            conn.execute(sa.delete(feature).where(feature.c.id.in_(doomed)))
        return {"code": 200, "message": f"feature {name!r} deleted"}

    # -- sensors -----------------------------------------------------------------------
    def _sensor_row(self, conn: sa.Connection, t: Tenant, name: str) -> Any:
        return conn.execute(sa.select(sensor).where(
            sensor.c.tenant_id == t.id, sensor.c.name == name)).first()

    def create_sensor(self, t: Tenant, body: SensorIn, field: str = "sensor"
                      ) -> dict[str, Any]:
        name, fname, kind = body.name, body.feature, body.type
        members = self._member_names(body.members, kind, field)
        with self.db.write() as conn:
            if self._sensor_row(conn, t, name) is not None:
                raise APIError(409, f"sensor {name!r} already exists", field=f"{field}.name")
            fid = self._require_feature(conn, t, fname, f"{field}.feature")
            ts = now_ms()
            sid = conn.execute(sa.insert(sensor).values(
                tenant_id=t.id, name=name, feature_id=fid, kind=kind,
                description=body.description, meta=body.metadata,
                created_ms=ts, updated_ms=ts)).inserted_primary_key[0]
            self._set_members(conn, t, sid, members, field)
            self._add_outputs(conn, t, sid, body.outputs, field)
        return {"code": 201, "message": f"sensor {name!r} created", "name": name}

    @staticmethod
    def _member_names(names: list[str], kind: str, field: str) -> list[str]:
        if names and kind != "composite":
            raise bad_request(f"{field}.members: only a composite sensor has members",
                              f"{field}.members")
        return names

    def _set_members(self, conn: sa.Connection, t: Tenant, sid: int, names: list[str],
                     field: str) -> None:
        for i, member in enumerate(names):
            row = self._sensor_row(conn, t, member)
            if row is None:
                raise APIError(404, f"{field}.members[{i}]: sensor {member!r} not found",
                               field=f"{field}.members[{i}]")
            if row.id == sid:
                raise bad_request(f"{field}.members[{i}]: a sensor cannot contain itself",
                                  f"{field}.members[{i}]")
            conn.execute(sa.insert(sensor_member).values(composite_id=sid, member_id=row.id))

    def _add_outputs(self, conn: sa.Connection, t: Tenant, sid: int,
                     outputs: list[OutputIn], field: str) -> None:
        for i, out in enumerate(outputs):
            prop = self._property(conn, t, out.name)
            if prop is None:
                prop = self._insert_property(conn, t, out.name, out.type or "quantity",
                                             out.unit, out.description)
            elif out.type and out.type != prop.type:
                raise APIError(409, f"{field}.outputs[{i}].type: property {prop.name!r} "
                                    f"is already of type {prop.type!r}",
                               field=f"{field}.outputs[{i}].type")
            self.link_outputs(conn, [(sid, prop.id)])

    def link_outputs(self, conn: sa.Connection, pairs: Iterable[tuple[int, int]]) -> None:
        """Record that sensors report properties (idempotent)."""
        pairs = sorted(set(pairs))
        if not pairs:
            return
        self._executemany(conn, "INSERT INTO sos_sensor_output (sensor_id, property_id) "
                          "VALUES ({p}, {p}) ON CONFLICT DO NOTHING", pairs)

    def update_sensor(self, t: Tenant, name: str, body: SensorUpdate) -> dict[str, Any]:
        v.name(name, "name")
        given = body.given()
        if "feature" in given and body.feature is None:
            raise bad_request("sensor.feature: a sensor belongs to a feature; name one",
                              "sensor.feature")
        with self.db.write() as conn:
            row = self._sensor_row(conn, t, name)
            if row is None:
                raise not_found(f"sensor {name!r}")
            values: dict[str, Any] = {"updated_ms": now_ms()}
            if body.feature is not None:
                values["feature_id"] = self._require_feature(conn, t, body.feature,
                                                             "sensor.feature")
            if "description" in given:
                values["description"] = body.description or ""
            if "metadata" in given:
                values["meta"] = body.metadata or {}
            kind = body.type or row.kind
            values["kind"] = kind
            if "members" in given:
                members = self._member_names(body.members or [], kind, "sensor")
                conn.execute(sa.delete(sensor_member).where(
                    sensor_member.c.composite_id == row.id))
                self._set_members(conn, t, row.id, members, "sensor")
            elif kind != "composite":
                conn.execute(sa.delete(sensor_member).where(
                    sensor_member.c.composite_id == row.id))
            # Outputs only grow: observations may already exist for the ones declared.
            self._add_outputs(conn, t, row.id, body.outputs or [], "sensor")
            conn.execute(sa.update(sensor).where(sensor.c.id == row.id).values(**values))
        return {"code": 200, "message": f"sensor {name!r} updated"}

    def _sensor_query(self) -> sa.Select[Any]:
        return (sa.select(sensor, feature.c.name.label("feature_name"))
                .join(feature, feature.c.id == sensor.c.feature_id))

    def _sensor_out(self, conn: sa.Connection, row: Any) -> dict[str, Any]:
        outputs = conn.execute(
            sa.select(observed_property.c.name, observed_property.c.type,
                      observed_property.c.unit)
            .join(sensor_output, sensor_output.c.property_id == observed_property.c.id)
            .where(sensor_output.c.sensor_id == row.id).order_by(observed_property.c.name)
        ).all()
        member = sensor.alias("member")
        members = conn.execute(
            sa.select(member.c.name).join(sensor_member, sensor_member.c.member_id == member.c.id)
            .where(sensor_member.c.composite_id == row.id).order_by(member.c.name)
        ).scalars().all()
        return {"name": row.name, "feature": row.feature_name, "type": row.kind,
                "description": row.description, "metadata": row.meta or {},
                "members": list(members),
                "outputs": [{"name": o.name, "type": o.type, "unit": o.unit} for o in outputs],
                "created": format_tcup(row.created_ms), "updated": format_tcup(row.updated_ms)}

    def get_sensor(self, t: Tenant, name: str) -> dict[str, Any]:
        v.name(name, "name")
        with self.db.read() as conn:
            row = conn.execute(self._sensor_query().where(
                sensor.c.tenant_id == t.id, sensor.c.name == name)).first()
            if row is None:
                raise not_found(f"sensor {name!r}")
            return self._sensor_out(conn, row)

    def list_sensors(self, t: Tenant, feature_name: str | None = None,
                     limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        q = self._sensor_query().where(sensor.c.tenant_id == t.id)
        if feature_name is not None:
            v.name(feature_name, "feature")
        with self.db.read() as conn:
            if feature_name is not None:
                fid = self._feature_id(conn, t, feature_name)
                if fid is None:
                    raise not_found(f"feature {feature_name!r}")
                q = q.where(sensor.c.feature_id == fid)
            rows = conn.execute(q.order_by(sensor.c.name).limit(limit).offset(offset)).all()
            return [self._sensor_out(conn, r) for r in rows]

    def delete_sensor(self, t: Tenant, name: str) -> dict[str, Any]:
        v.name(name, "name")
        with self.db.write(bulk=True) as conn:  # may delete millions of values
            row = self._sensor_row(conn, t, name)
            if row is None:
                raise not_found(f"sensor {name!r}")
            self._delete_sensors(conn, [row.id])
        return {"code": 200, "message": f"sensor {name!r} and its observations deleted"}

    def _delete_sensors(self, conn: sa.Connection, ids: list[int]) -> None:
        if ids:
            conn.execute(sa.delete(observation).where(observation.c.sensor_id.in_(ids)))
            conn.execute(sa.delete(sensor).where(sensor.c.id.in_(ids)))

    @staticmethod
    def _ref_query(t: Tenant) -> sa.Select[Any]:
        return (sa.select(sensor.c.id, sensor.c.name, feature.c.name.label("feature"))
                .join(feature, feature.c.id == sensor.c.feature_id)
                .where(sensor.c.tenant_id == t.id))

    def sensor_refs_in(self, conn: sa.Connection, t: Tenant,
                       names: list[str] | None = None) -> list[SensorRef]:
        """The tenant's sensors (those named, or all), inside the caller's transaction."""
        if names is None:
            rows = conn.execute(self._ref_query(t)).all()
        else:  # on every observation insert: a statement built once, not per call
            rows = conn.execute(_NAMED_REFS, {"tenant": t.id, "names": names}).all()
        return [SensorRef(r.id, r.name, r.feature) for r in rows]

    def sensor_refs(self, t: Tenant, names: list[str] | None = None,
                    feature_name: str | None = None) -> list[SensorRef]:
        """The tenant's sensors, by name and/or feature; 404 for an unknown name."""
        q = self._ref_query(t)
        if names is not None:
            q = q.where(sensor.c.name.in_(names))
        with self.db.read() as conn:
            if feature_name is not None:
                fid = self._feature_id(conn, t, feature_name)
                if fid is None:
                    raise not_found(f"feature {feature_name!r}")
                q = q.where(sensor.c.feature_id == fid)
            rows = conn.execute(q.order_by(sensor.c.id)).all()
        refs = [SensorRef(r.id, r.name, r.feature) for r in rows]
        if names is not None and feature_name is None:
            missing = set(names) - {r.name for r in refs}
            if missing:
                raise not_found(f"sensor {sorted(missing)[0]!r}")
        return refs

    # -- observed properties -------------------------------------------------------------
    def _property(self, conn: sa.Connection, t: Tenant, name: str) -> Prop | None:
        row = conn.execute(sa.select(observed_property.c.id, observed_property.c.name,
                                     observed_property.c.type).where(
            observed_property.c.tenant_id == t.id, observed_property.c.name == name)).first()
        return Prop(row.id, row.name, row.type) if row else None

    def _insert_property(self, conn: sa.Connection, t: Tenant, name: str, ptype: str,
                         unit: str = "", description: str = "") -> Prop:
        pid = conn.execute(sa.insert(observed_property).values(
            tenant_id=t.id, name=name, type=ptype, unit=unit, description=description)
        ).inserted_primary_key[0]
        return Prop(pid, name, ptype)

    def properties(self, conn: sa.Connection, t: Tenant) -> dict[str, Prop]:
        rows = conn.execute(_PROPERTIES, {"tenant": t.id}).all()
        return {r.name: Prop(r.id, r.name, r.type) for r in rows}

    def ensure_property(self, conn: sa.Connection, t: Tenant, known: dict[str, Prop],
                        name: str, ptype: str) -> Prop:
        """The property ``name``, registering it with ``ptype`` the first time it is seen."""
        prop = known.get(name)
        if prop is None:
            prop = known[name] = self._insert_property(conn, t, name, ptype)
        return prop

    def create_property(self, t: Tenant, body: PropertyIn, field: str = "observedProperty"
                        ) -> dict[str, Any]:
        name = body.name
        with self.db.write() as conn:
            if self._property(conn, t, name) is not None:
                raise APIError(409, f"observed property {name!r} already exists",
                               field=f"{field}.name")
            self._insert_property(conn, t, name, body.type, body.unit, body.description)
        return {"code": 201, "message": f"observed property {name!r} created", "name": name}

    def update_property(self, t: Tenant, name: str, body: PropertyUpdate) -> dict[str, Any]:
        v.name(name, "name")
        given = body.given()
        with self.db.write() as conn:
            prop = self._property(conn, t, name)
            if prop is None:
                raise not_found(f"observed property {name!r}")
            values: dict[str, Any] = {}
            if "unit" in given:
                values["unit"] = body.unit or ""
            if "description" in given:
                values["description"] = body.description or ""
            if body.type is not None:
                ptype = body.type
                if ptype != prop.type and self._has_values(conn, prop.id):
                    raise APIError(409, f"observed property {name!r} has observations; "
                                        "its type cannot change", field="observedProperty.type")
                values["type"] = ptype
            if values:
                conn.execute(sa.update(observed_property).where(
                    observed_property.c.id == prop.id).values(**values))
        return {"code": 200, "message": f"observed property {name!r} updated"}

    @staticmethod
    def _has_values(conn: sa.Connection, pid: int) -> bool:
        return conn.execute(sa.select(observation.c.sensor_id).where(
            observation.c.property_id == pid).limit(1)).first() is not None

    def get_property(self, t: Tenant, name: str) -> dict[str, Any]:
        rows = self.list_properties(t, name=v.name(name, "name"))
        if not rows:
            raise not_found(f"observed property {name!r}")
        return rows[0]

    def list_properties(self, t: Tenant, name: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(observed_property).where(observed_property.c.tenant_id == t.id)
        if name is not None:
            q = q.where(observed_property.c.name == name)
        with self.db.read() as conn:
            rows = conn.execute(q.order_by(observed_property.c.name)).all()
        return [{"name": r.name, "type": r.type, "unit": r.unit, "description": r.description}
                for r in rows]

    def delete_property(self, t: Tenant, name: str) -> dict[str, Any]:
        v.name(name, "name")
        with self.db.write() as conn:
            prop = self._property(conn, t, name)
            if prop is None:
                raise not_found(f"observed property {name!r}")
            if self._has_values(conn, prop.id):
                raise APIError(409, f"observed property {name!r} has observations; "
                                    "delete its sensors' observations first")
            conn.execute(sa.delete(observed_property).where(observed_property.c.id == prop.id))
        return {"code": 200, "message": f"observed property {name!r} deleted"}

    # -- observation values -------------------------------------------------------------
    def write_values(self, conn: sa.Connection, rows: Iterable[Row]) -> None:
        """Upsert observation values; a retried write overwrites instead of duplicating."""
        sql = ("INSERT INTO sos_observation (sensor_id, property_id, time_ms, num, text) "
               "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (sensor_id, property_id, time_ms) "
               "DO UPDATE SET num = excluded.num, text = excluded.text")
        if self.db.dialect == "postgresql":
            rows = list(rows)

            def feed(copy: Any) -> None:
                for row in rows:
                    copy.write_row(row)

            if self._pg_copy_new(conn, feed):
                return
        self._executemany(conn, sql, rows)

    def _executemany(self, conn: sa.Connection, sql: str, rows: Iterable[Any]) -> None:
        """The driver's own executemany inside the caller's transaction: for many small
        rows it is several times faster than SQLAlchemy's. ``{p}`` marks each parameter."""
        style = "?" if self.db.dialect == "sqlite" else "%s"
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(sql.format(p=style), rows)
        finally:
            cursor.close()

    @staticmethod
    def _pg_copy_new(conn: sa.Connection, feed: Callable[[Any], Any],
                     options: str = "") -> bool:
        """COPY values straight into sos_observation (PostgreSQL): the fast path when every
        key is new. COPY cannot upsert, so if a key exists or repeats, a savepoint undoes
        it and this answers False for the caller to upsert instead."""
        from psycopg.errors import UniqueViolation

        with conn.connection.driver_connection.cursor() as cur:
            cur.execute("SAVEPOINT sos_copy")
            try:
                with cur.copy(f"COPY sos_observation ({', '.join(VALUE_COLUMNS)}) "
                              f"FROM STDIN{options}") as copy:
                    feed(copy)
            except UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT sos_copy")
                return False
            cur.execute("RELEASE SAVEPOINT sos_copy")
        return True

    def write_table(self, conn: sa.Connection, table: pa.Table) -> None:
        """Upsert many values given as columns (sensor_id, property_id, time_ms, num, text)."""
        if self.db.dialect == "sqlite":
            self.write_values(conn, zip(*(table[c].to_pylist() for c in VALUE_COLUMNS)))
            return
        import pyarrow.csv as pacsv  # the bulk paths load Arrow on first use

        # Arrow writes the CSV. New keys (the usual case) go straight in with COPY; else
        # COPY fills a temporary table that one INSERT … ON CONFLICT then merges. Both
        # stay inside the caller's transaction.
        buf = io.BytesIO()
        pacsv.write_csv(table.select(list(VALUE_COLUMNS)), buf,
                        write_options=pacsv.WriteOptions(include_header=False))
        if self._pg_copy_new(conn, lambda copy: copy.write(buf.getbuffer()), " (FORMAT csv)"):
            return
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            # `seq` keeps the file's order, so the last of duplicate keys wins, as on SQLite.
            cur.execute("CREATE TEMP TABLE IF NOT EXISTS sos_observation_in "
                        "(LIKE sos_observation, seq bigserial) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY sos_observation_in ({', '.join(VALUE_COLUMNS)}) "
                          "FROM STDIN (FORMAT csv)") as copy:
                copy.write(buf.getbuffer())
            cur.execute(
                "INSERT INTO sos_observation SELECT DISTINCT ON (sensor_id, property_id, time_ms)"
                f" {', '.join(VALUE_COLUMNS)} FROM sos_observation_in"
                " ORDER BY sensor_id, property_id, time_ms, seq DESC"
                " ON CONFLICT (sensor_id, property_id, time_ms)"
                " DO UPDATE SET num = excluded.num, text = excluded.text")
            cur.execute("TRUNCATE sos_observation_in")

    def add_outbox(self, conn: sa.Connection, t: Tenant, routing: str,
                   payload: list[dict[str, Any]]) -> None:
        conn.execute(sa.insert(routing_outbox).values(
            tenant_id=t.id, routing=routing, payload={"observations": payload},
            created_ms=now_ms(), origin=self.outbox_origin))

    def _outbox_mine(self) -> sa.ColumnElement[bool]:
        """The outbox rows this process routes: on PostgreSQL with a broker of its own
        (:attr:`outbox_origin` set), the rows it inserted; else all (SQLite has one
        writing process, and a shared broker takes any process's rows)."""
        if self.outbox_origin is None or self.db.dialect != "postgresql":
            return sa.true()
        return routing_outbox.c.origin == self.outbox_origin

    def outbox_batch(self, limit: int) -> list[tuple[int, Tenant, dict[str, Any]]]:
        """The oldest observations waiting for message routing, every tenant's: row id,
        tenant and the insert body as sent (Message Routing drains them)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(routing_outbox.c.id, routing_outbox.c.payload, tenant.c.id.label("tid"),
                          tenant.c.name, tenant.c.jwt_secret)
                .join(tenant, tenant.c.id == routing_outbox.c.tenant_id)
                .where(self._outbox_mine())
                .order_by(routing_outbox.c.id).limit(limit)).all()
        return [(r.id, Tenant(r.tid, r.name, r.jwt_secret), r.payload) for r in rows]

    def outbox_done(self, ids: list[int]) -> None:
        """Forget outbox rows the broker has confirmed."""
        with self.db.write() as conn:
            conn.execute(sa.delete(routing_outbox).where(routing_outbox.c.id.in_(ids)))

    def outbox_forget_orphans(self, older_than_ms: int) -> int:
        """Drop rows older than ``older_than_ms`` that another process inserted for its
        own embedded router: that router's messages ended with it. The number dropped."""
        if self.outbox_origin is None or self.db.dialect != "postgresql":
            return 0
        with self.db.write() as conn:
            return conn.execute(sa.delete(routing_outbox).where(
                routing_outbox.c.origin.is_not(None),
                routing_outbox.c.origin != self.outbox_origin,
                routing_outbox.c.created_ms < now_ms() - older_than_ms)).rowcount

    def outbox(self, t: Tenant) -> list[dict[str, Any]]:
        """Observations waiting for message routing (oldest first)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(routing_outbox).where(
                routing_outbox.c.tenant_id == t.id).order_by(routing_outbox.c.id)).all()
        return [{"routing": r.routing, "payload": r.payload} for r in rows]

    def sensor_outputs(self, t: Tenant, sensor_ids: list[int]) -> list[tuple[int, Prop]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(sensor_output.c.sensor_id, observed_property.c.id,
                          observed_property.c.name, observed_property.c.type)
                .join(observed_property, observed_property.c.id == sensor_output.c.property_id)
                .where(observed_property.c.tenant_id == t.id,
                       sensor_output.c.sensor_id.in_(sensor_ids))).all()
        return [(r.sensor_id, Prop(r.id, r.name, r.type)) for r in rows]

    def delete_observations(self, t: Tenant, refs: list[SensorRef], start: int | None,
                            end: int | None) -> int:
        q = sa.delete(observation).where(observation.c.sensor_id.in_([r.id for r in refs]))
        if start is not None:
            q = q.where(observation.c.time_ms >= start)
        if end is not None:
            q = q.where(observation.c.time_ms < end)
        with self.db.write(bulk=True) as conn:  # may delete millions of values
            return conn.execute(q).rowcount

    # -- summaries ------------------------------------------------------------------------
    def count(self, t: Tenant) -> dict[str, int]:
        def n(table: sa.Table) -> sa.ScalarSelect[Any]:
            return (sa.select(sa.func.count()).select_from(table)
                    .where(table.c.tenant_id == t.id).scalar_subquery())

        with self.db.read() as conn:
            row = conn.execute(sa.select(n(sensor), n(feature), n(observed_property))).one()
        return {"sensors": row[0], "features": row[1], "observedProperties": row[2]}

    def capabilities(self, t: Tenant) -> dict[str, Any]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(sensor.c.name, observed_property.c.name.label("output"))
                .outerjoin(sensor_output, sensor_output.c.sensor_id == sensor.c.id)
                .outerjoin(observed_property,
                           observed_property.c.id == sensor_output.c.property_id)
                .where(sensor.c.tenant_id == t.id)
                .order_by(sensor.c.name, observed_property.c.name)).all()
        outputs: dict[str, list[str]] = {}
        for r in rows:
            outputs.setdefault(r.name, [])
            if r.output is not None:
                outputs[r.name].append(r.output)
        c = self.count(t)
        return {"count": {"sensors": c["sensors"], "features": c["features"]},
                "sensorOutput": outputs}
