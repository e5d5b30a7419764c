"""Session and subject metadata: read from the small YAML/JSON file a user passes, shared by NWB and
``data_description.json``.

Example (``session.yaml``)::

    subject:
      subject_id: M123
      species: Mus musculus          # Latin binomial
      sex: M                         # M, F, U or O
      age: P90D                      # ISO 8601 duration (or date_of_birth: 2025-01-01T00:00:00+00:00)
    session:
      session_start_time: 2026-01-01T12:00:00+01:00   # with time zone
      session_description: Visual stimulation, two probes
      experimenter: ["Doe, Jane"]
      institution: Example University
      lab: Example Lab
    probes:
      imec0: {location: VISp}        # brain area (Allen CCF acronym for mice), per probe

Every field is optional: what is missing is reported (see :func:`missing_for_dandi`), never invented, except
``session_start_time`` which falls back to the SpikeGLX ``fileCreateTime`` (local time zone of this machine).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubjectMetadata(_Block):
    subject_id: str | None = None
    species: str | None = Field(None, description="Latin binomial, e.g. 'Mus musculus'.")
    sex: Literal["M", "F", "U", "O"] | None = None
    age: str | None = Field(None, description="ISO 8601 duration, e.g. 'P90D'.")
    date_of_birth: dt.datetime | None = None
    strain: str | None = None
    genotype: str | None = None
    description: str | None = None


class SessionInfo(_Block):
    session_start_time: dt.datetime | None = None
    session_id: str | None = None
    session_description: str | None = None
    experiment_description: str | None = None
    experimenter: list[str] = Field(default_factory=list, description="'Last, First' names.")
    institution: str | None = None
    lab: str | None = None
    keywords: list[str] = Field(default_factory=list)


class ProbeInfo(_Block):
    location: str | None = Field(None, description="Brain area of the probe (Allen CCF acronym for mice).")
    description: str | None = None


class SessionMetadata(_Block):
    """The content of a metadata file; see the module docstring for an example."""

    subject: SubjectMetadata = Field(default_factory=SubjectMetadata)
    session: SessionInfo = Field(default_factory=SessionInfo)
    probes: dict[str, ProbeInfo] = Field(default_factory=dict)


def load_session_metadata(path: str | Path | None) -> SessionMetadata:
    """Read and validate a metadata file (YAML or JSON); ``None`` gives empty metadata.

    Parameters
    ----------
    path : str | Path | None
        The file.

    Returns
    -------
    SessionMetadata

    Raises
    ------
    ConfigError
        If the file cannot be read or holds unknown keys or invalid values.
    """
    if path is None:
        return SessionMetadata()
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"cannot read metadata file {path}: {exc.strerror}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"metadata file {path} is not valid YAML/JSON: {exc}") from None
    try:
        return SessionMetadata.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid metadata file {path}: {problems}. Valid sections: subject, session, probes "
                          f"(subject keys: {sorted(SubjectMetadata.model_fields)}; session keys: "
                          f"{sorted(SessionInfo.model_fields)})") from None


def missing_for_dandi(metadata: SessionMetadata, probe_names: list[str] = ()) -> list[str]:
    """Fields a DANDI upload asks for that the metadata does not give.

    Parameters
    ----------
    metadata : SessionMetadata
        The user's metadata.
    probe_names : list of str
        Probes in the file; each needs a ``location``.

    Returns
    -------
    list of str
        Dotted names, e.g. ``["subject.subject_id", "subject.age or subject.date_of_birth"]``.
    """
    s, sess = metadata.subject, metadata.session
    missing = [f"subject.{name}" for name in ("subject_id", "species", "sex") if getattr(s, name) is None]
    if s.age is None and s.date_of_birth is None:
        missing.append("subject.age or subject.date_of_birth")
    missing += [f"session.{name}" for name in ("session_start_time", "session_description", "experimenter",
                                               "institution") if not getattr(sess, name)]
    missing += [f"probes.{p}.location" for p in probe_names if not (metadata.probes.get(p) and
                                                                    metadata.probes[p].location)]
    return missing


def to_neuroconv_metadata(metadata: SessionMetadata, session: str, session_start_time: dt.datetime,
                          identifier: str) -> dict[str, Any]:
    """The ``NWBFile`` and ``Subject`` sections of a neuroconv metadata dict.

    Parameters
    ----------
    metadata : SessionMetadata
        The user's metadata.
    session : str
        Session name (used as ``session_id`` when the metadata has none).
    session_start_time : datetime.datetime
        Time-zone-aware start time (the metadata's own wins when given).
    identifier : str
        Unique identifier of the file.

    Returns
    -------
    dict
    """
    sess = metadata.session
    nwbfile = {
        "session_start_time": sess.session_start_time or session_start_time,
        "identifier": identifier,
        "session_id": sess.session_id or session,
        "session_description": sess.session_description or f"Spike sorting of session {session} by spikeline.",
    }
    for name in ("experiment_description", "institution", "lab"):
        if getattr(sess, name):
            nwbfile[name] = getattr(sess, name)
    if sess.experimenter:
        nwbfile["experimenter"] = list(sess.experimenter)
    if sess.keywords:
        nwbfile["keywords"] = list(sess.keywords)
    result: dict[str, Any] = {"NWBFile": nwbfile}
    subject = metadata.subject.model_dump(exclude_none=True)
    if subject:
        result["Subject"] = subject
    return result
