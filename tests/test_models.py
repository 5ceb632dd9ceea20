"""The catalog models on a migrated database: constraints, cascades, round trips."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from catalog import (
    AuditEvent,
    Clip,
    Collection,
    CollectionItem,
    Embedding,
    ModelVersion,
    Patient,
    Report,
    Series,
    Study,
    session_factory,
    transaction,
)
from catalog.schema import upgrade


@pytest.fixture
def catalog(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def add_study(engine: Engine, uid: str = "1.2.3.4") -> int:
    with transaction(session_factory(engine)) as s:
        patient = Patient(pseudo_id="PABC")
        study = Study(
            study_uid=uid,
            patient=patient,
            accession="ACC1",
            study_date=date(2024, 5, 17),
            manufacturer="SIEMENS",
            field_strength=1.5,
            patient_age=54,
            patient_sex="F",
        )
        study.series.append(
            Series(
                series_uid=uid + ".1",
                view="sax",
                frames=25,
                slices=10,
                pixel_spacing=[1.4, 1.4],
                orientation=[1, 0, 0, 0, 1, 0],
            )
        )
        study.clips.append(
            Clip(view="sax_mid", path="clips/x.npz", shape=[16, 112, 112], checksum="0" * 64)
        )
        s.add(study)
        s.add(
            Report(study=study, accession="ACC1", text="IMPRESSION: normal.", impression="normal.")
        )
        s.flush()
        return study.id


def test_study_round_trip_keeps_types(catalog: Engine) -> None:
    study_id = add_study(catalog)
    with session_factory(catalog)() as s:
        study = s.get_one(Study, study_id)
        assert study.study_date == date(2024, 5, 17)
        assert study.field_strength == pytest.approx(1.5)
        assert study.series[0].pixel_spacing == [1.4, 1.4]
        assert study.clips[0].shape == [16, 112, 112]
        assert study.report is not None and study.report.impression == "normal."
        assert study.patient is not None and study.patient.identifier is None


def test_study_uid_is_unique(catalog: Engine) -> None:
    add_study(catalog)
    with pytest.raises(IntegrityError), transaction(session_factory(catalog)) as s:
        s.add(Study(study_uid="1.2.3.4"))


def test_vector_bytes_round_trip_exactly(catalog: Engine) -> None:
    study_id = add_study(catalog)
    vector = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    with transaction(session_factory(catalog)) as s:
        s.add(ModelVersion(id="m1", checkpoint_path="models/m1", config={"dim": 256}))
        s.add(Embedding(study_id=study_id, model_version_id="m1", dim=256, vector=vector.tobytes()))
    with session_factory(catalog)() as s:
        stored = s.scalars(select(Embedding)).one()
        assert stored.view == "study"
        np.testing.assert_array_equal(np.frombuffer(stored.vector, dtype=np.float32), vector)


def test_deleting_a_study_removes_its_dependants_and_unlinks_its_report(catalog: Engine) -> None:
    study_id = add_study(catalog)
    factory = session_factory(catalog)
    with transaction(factory) as s:
        s.add(ModelVersion(id="m1", checkpoint_path="m", config={}))
        s.add(Embedding(study_id=study_id, model_version_id="m1", dim=1, vector=b"\0\0\0\0"))
        coll = Collection(name="teaching: aneurysm")
        coll.items.append(CollectionItem(study_id=study_id, note="classic"))
        s.add(coll)
    with transaction(factory) as s:
        s.delete(s.get_one(Study, study_id))
    with factory() as s:
        # Enforced by the database's foreign keys, not only by the ORM.
        for model in (Series, Clip, Embedding, CollectionItem):
            assert s.scalars(select(model)).all() == []
        report = s.scalars(select(Report)).one()
        assert report.study_id is None
        assert s.scalars(select(Collection)).one().name == "teaching: aneurysm"


def test_database_foreign_keys_reject_orphans(catalog: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(session_factory(catalog)) as s:
        s.add(Series(study_id=999, series_uid="9.9", view="other", frames=1, slices=1))


def test_audit_event_details_are_json(catalog: Engine) -> None:
    with transaction(session_factory(catalog)) as s:
        s.add(AuditEvent(user="dr.a", action="search", details={"query": "apical aneurysm"}))
    with session_factory(catalog)() as s:
        event = s.scalars(select(AuditEvent)).one()
        assert event.details == {"query": "apical aneurysm"}
        assert event.created_at is not None
