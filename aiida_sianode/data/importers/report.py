"""What an import made of each file: :class:`FrameRefusal`, :class:`FileReport` and :class:`ImportReport`."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiida_sianode.common import level_of_theory as lot

__all__ = ('FileReport', 'FrameRefusal', 'ImportReport', 'describe_frames')


@dataclasses.dataclass
class FrameRefusal:
    """A frame that did not become a label, and why; ``detail`` holds numbers that differ from frame to frame."""

    frame: int | None
    reason: str
    detail: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class FileReport:
    """What :func:`import_files` made of one file.

    ``labels`` are unstored ``LabelData`` until :meth:`ImportReport.store`; ``error`` is set when nothing of the
    file could be used (and says why); ``notes`` are facts worth knowing that did not refuse anything.
    """

    path: str
    format: str
    sha256: str = ''
    frames_found: int = 0
    labels: list = dataclasses.field(default_factory=list)
    refused: list[FrameRefusal] = dataclasses.field(default_factory=list)
    error: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def n_imported(self) -> int:
        """Number of frames that became labels."""
        return len(self.labels)

    @property
    def n_refused(self) -> int:
        """Number of frames refused (a whole-file error counts as one)."""
        return len(self.refused) + (1 if self.error and not self.refused else 0)

    def grouped_refusals(self) -> list[tuple[list[int | None], str]]:
        """Return the refusals as ``(frames, reason)``, runs of frames that share a reason grouped.

        For duplicates the reason ends with the frames they repeat and the range of the energy differences.
        """
        groups: list[tuple[list[FrameRefusal], str]] = []
        for refusal in self.refused:
            if groups and groups[-1][1] == refusal.reason:
                groups[-1][0].append(refusal)
            else:
                groups.append(([refusal], refusal.reason))
        result = []
        for members, reason in groups:
            repeats = [member.detail['repeats'] for member in members if 'repeats' in member.detail]
            if repeats:
                differences = [member.detail['energy_difference_ev'] for member in members]
                low, high = min(differences), max(differences)
                spread = f'{low:+.2e} eV' if low == high else f'{low:+.2e} to {high:+.2e} eV'
                reason = f'{reason}: {describe_frames(sorted(set(repeats)))} there (energies differ by {spread})'
            result.append(([member.frame for member in members], reason))
        return result

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (label PKs only when stored)."""
        return {
            'path': self.path,
            'format': self.format,
            'sha256': self.sha256,
            'frames_found': self.frames_found,
            'imported': self.n_imported,
            'refused': [
                {'frame': refusal.frame, 'reason': refusal.reason, **refusal.detail} for refusal in self.refused
            ],
            'error': self.error,
            'notes': list(self.notes),
            'label_pks': [label.pk for label in self.labels if label.is_stored],
        }

    def summary_lines(self) -> list[str]:
        """Return the human-readable lines the CLI prints for this file."""
        lines = [f'{self.path} [{self.format}]: {self.n_imported} imported, {len(self.refused)} refused']
        if self.error:
            lines[0] = f'{self.path} [{self.format}]: nothing imported'
            lines.append(f'  refused: {self.error}')
        for frames, reason in self.grouped_refusals():
            lines.append(f'  {describe_frames(frames)}: {reason}')
        lines.extend(f'  note: {note}' for note in self.notes)
        return lines


@dataclasses.dataclass
class ImportReport:
    """The result of :func:`import_files`: one :class:`FileReport` per file, in the order read."""

    files: list[FileReport]

    @property
    def labels(self) -> list:
        """All labels made, in file and frame order."""
        return [label for report in self.files for label in report.labels]

    @property
    def n_imported(self) -> int:
        """Number of labels made."""
        return sum(report.n_imported for report in self.files)

    @property
    def n_refused(self) -> int:
        """Number of frames (or whole files) refused."""
        return sum(report.n_refused for report in self.files)

    def mixed_levels_of_theory(self) -> list[str]:
        """Return the differences between the levels of theory of the labels (empty: all compatible)."""
        found: list[str] = []
        reference = None
        seen = set()
        for report in self.files:
            for label in report.labels:
                if reference is None:
                    reference = (report.path, label.level_of_theory)
                    continue
                if label.fingerprint in seen:
                    continue
                differences = lot.differences(reference[1], label.level_of_theory)
                if differences:
                    seen.add(label.fingerprint)
                    found.append(f'{report.path} vs {reference[0]}: {"; ".join(differences)}')
        return found

    def store(self, group_label: str | None = None, *, batch_size: int | None = None, progress=None):
        """Store every label and, with ``group_label``, add them to that ``orm.Group`` (created when missing).

        The labels go through the bulk path (:func:`aiida_sianode.data.bulk.store_labels`: arrays in the packed
        store, node rows inserted in one transaction per batch): all of them or, on an error, none (the group is
        created all the same).
        Afterwards ``labels`` holds the stored ``LabelData`` nodes (records made with ``records=True`` stay records,
        now with ``pk`` and ``uuid``).

        :param batch_size: labels per bulk insert (default :data:`aiida_sianode.data.bulk.DEFAULT_BATCH`).
        :param progress: called as ``progress(stored, total)`` after each batch.
        :return: the group, or ``None`` without ``group_label``.
        """
        from aiida import orm

        from aiida_sianode.data.bulk import DEFAULT_BATCH, LabelRecord, store_labels

        labels = self.labels
        pending = [label for label in labels if not label.is_stored]
        group = None
        if group_label is not None:
            group, _ = orm.Group.collection.get_or_create(label=group_label)
            if not group.description:
                group.description = f'labels imported by aiida-sianode from {len(self.files)} file(s)'
            earlier = [label for label in labels if label.is_stored and not isinstance(label, LabelRecord)]
            if earlier:
                group.add_nodes(earlier)
        pks = store_labels(pending, group=group, batch_size=batch_size or DEFAULT_BATCH, progress=progress)
        stored = {id(label): pk for label, pk in zip(pending, pks) if not isinstance(label, LabelRecord)}
        if stored:
            query = orm.QueryBuilder().append(
                orm.Node, filters={'id': {'in': list(stored.values())}}, project=['id', '*']
            )
            nodes = dict(query.iterall())
            for report in self.files:
                report.labels = [nodes[stored[id(label)]] if id(label) in stored else label for label in report.labels]
        return group

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary."""
        return {
            'files': [report.as_dict() for report in self.files],
            'imported': self.n_imported,
            'refused': self.n_refused,
        }

    def summary_lines(self) -> list[str]:
        """Return the lines the CLI prints: per file, then the totals."""
        lines = [line for report in self.files for line in report.summary_lines()]
        lines.append(f'total: {self.n_imported} frames imported, {self.n_refused} refused, {len(self.files)} file(s)')
        return lines


def describe_frames(frames: list[int | None]) -> str:
    """Return ``frame 3`` / ``frames 0-89 (90)`` / ``frames 1, 4`` for a list of frame indices."""
    if frames == [None]:
        return 'file'
    if len(frames) == 1:
        return f'frame {frames[0]}'
    if all(isinstance(frame, int) for frame in frames) and frames == list(range(frames[0], frames[-1] + 1)):
        return f'frames {frames[0]}-{frames[-1]} ({len(frames)})'
    return 'frames ' + ', '.join(str(frame) for frame in frames)
