"""Benchmark: a small GPAW PBE Li2CO3 training set with Li vacancy hops, labelled by the project's label engine, and
a MACE committee on it.

The Li2CO3 counterpart of ``train_lisi_gpaw.py``, whose stages it reuses through a :class:`SetDescription` (the GPAW
``fast`` settings, the label loop and writer, the LabelData import, the serial training and the saved models'
README); its own are the frames and the report. Two stages, each resumable:

1. ``--label``: builds the frames (see :func:`build_frames`: the 12-atom primitive and the 24-atom conventional cell
   of zabuyelite (``sei_crystal('Li2CO3')``, C2/c) strained by 2-3 %, sheared and rattled; 23-atom cells with one Li
   removed (a neutral vacancy), rattled; and the IDPP images of the two vacancy hops of :data:`HOPS`, rattled 0.03-0.08
   Å) and labels each with :func:`aiida_sianode.engines.label.label` (GPAW plane waves, PBE, spin-paired) at the
   ``fast`` protocol of ``protocols/label_gpaw.yaml``. Every finished label is appended at once to
   ``fixtures/datasets/li2co3_gpaw_fast.extxyz``, so a rerun labels only the missing frames.
2. ``--train``: the labels become LabelData nodes and two DatasetData (the frames with ``split=test``, one in six,
   form the test set; the rest are split 90/10 into train/valid, seed 0), and ``TrainCommitteeWorkChain`` trains a
   committee at the ``fast`` protocol (``--override`` as for ``aiida-sianode train``); ``--save-models DIR`` copies
   the members to ``DIR/member_<i>.model``.

The hops: in the 24-atom conventional cell the Li-Li distances are 2.70, 2.98 (twice: two periodic images of one
neighbour at the same distance, so a band between them has no unique minimum image), 3.01 and 3.14 Å; the hops are
the 2.70 and 3.01 Å ones. The band of a hop is what ``aiida-sianode property run neb`` builds from the two end points
of :func:`hop_endpoints` at the ``fast`` NEB protocol (3 IDPP images), so the training frames lie on the path that
``benchmarks/properties_li2co3.py`` computes.

Usage (repository root)::

    OMP_NUM_THREADS=1 python benchmarks/train_li2co3_gpaw.py --label
    OMP_NUM_THREADS=1 AIIDA_PATH=$PWD/.aiida python benchmarks/train_li2co3_gpaw.py --train --serial \
        --profile sianode --save-models fixtures/models/li2co3_fast --override max_num_epochs=100 \
        --override batch_size=2 --override patience=100 --override stage_two=true --override stage_two_start=50
    python benchmarks/train_li2co3_gpaw.py --report-only
"""

from __future__ import annotations

import hashlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from train_lisi_gpaw import (  # noqa: E402  (sibling benchmark scripts, not a package)
    GPAW_FAST,
    SetDescription,
    _frame_table,
    _rattled,
    _strained,
    committee_section,
    set_main,
    set_run_lines,
)
from train_lisi_gpaw import label_stage as shared_label_stage  # noqa: E402

LABELS = REPO / 'fixtures' / 'datasets' / 'li2co3_gpaw_fast.extxyz'
RESULTS = HERE / 'train_li2co3_gpaw.json'
REPORT = HERE / 'train_li2co3_gpaw.md'
LI2CO3 = SetDescription(
    'Li2CO3',
    'benchmarks/train_li2co3_gpaw.py',
    'fixtures/datasets/li2co3_gpaw_fast.extxyz',
    'benchmarks/train_li2co3_gpaw.md',
)

#: The vacancy hops, as (vacant Li site, Li that hops into it) by index in ``sei_crystal('Li2CO3')``, with the hop
#: length in the perfect cell (Å): the shortest one and the shortest other with a unique minimum image.
HOPS = {'hop_2.70': (0, 6, 2.70), 'hop_3.01': (0, 1, 3.008)}
#: Intermediate images of a hop's band: those of the ``fast`` NEB protocol (protocols/properties/neb.yaml).
HOP_IMAGES = 3

#: One frame in ``TEST_EVERY`` (frame_id % TEST_EVERY == TEST_EVERY - 1) is held out as the test set.
TEST_EVERY = 6


def unit_cell(primitive: bool = False):
    """Zabuyelite Li2CO3 (C2/c) from the project's builder: the 24-atom conventional cell, or the 12-atom primitive."""
    from ase.spacegroup import crystal

    from aiida_sianode.structures.sei import SEI_CRYSTALS, sei_crystal

    if not primitive:
        return sei_crystal('Li2CO3')
    data = SEI_CRYSTALS['Li2CO3']
    return crystal(
        data['symbols'], data['basis'], spacegroup=data['spacegroup'], cellpar=data['cellpar'], primitive_cell=True
    )


def hop_endpoints(hop: str, strain=None):
    """The two end points of ``hop`` (a key of :data:`HOPS`), 23 atoms each, the same atoms in the same order:
    Li ``site`` removed, and Li ``mover`` on its own site (initial) or on the vacant one (final), minimum image."""
    from ase.geometry import find_mic

    site, mover, _ = HOPS[hop]
    cell = unit_cell()
    if strain is not None:
        cell = _strained(cell, strain)
    target = cell.positions[site]
    initial = cell.copy()
    del initial[site]
    index = mover - (mover > site)
    final = initial.copy()
    step, _ = find_mic(target - initial.positions[index], initial.cell, initial.pbc)
    final.positions[index] = initial.positions[index] + step
    for atoms in (initial, final):
        atoms.info = {}
    return initial, final


def hop_images(hop: str) -> list:
    """The IDPP band of ``hop`` as the NEB property builds it: the end points and :data:`HOP_IMAGES` images."""
    from aiida_sianode.properties.neb import interpolate

    initial, final = hop_endpoints(hop)
    return interpolate(initial, final, HOP_IMAGES)


def build_frames() -> list[tuple[str, object]]:
    """Every frame to label, as ``(config_type, atoms)``, in a fixed order (the index is the frame id)."""
    primitive, conventional = unit_cell(primitive=True), unit_cell()
    bulk = [
        ('Li2CO3_primitive', primitive, (0.0, 0.0, 0.0), 0.03),
        ('Li2CO3_primitive', primitive, (0.03, 0.03, 0.03), 0.05),
        ('Li2CO3_primitive', primitive, (-0.03, -0.03, -0.03), 0.05),
        ('Li2CO3_primitive', primitive, (0.02, -0.02, 0.01, 0.02, 0.0, 0.0), 0.05),
        ('Li2CO3_primitive', primitive, (0.0, 0.0, 0.0, 0.0, 0.03, 0.03), 0.08),
        ('Li2CO3_primitive', primitive, (-0.02, 0.03, -0.02, 0.0, 0.02, 0.0), 0.1),
        ('Li2CO3_cell', conventional, (0.0, 0.0, 0.0), 0.05),
        ('Li2CO3_cell', conventional, (0.02, 0.02, -0.02, 0.0, 0.02, 0.0), 0.08),
    ]
    vacancies = [
        ('Li2CO3_vacancy', hop_endpoints('hop_2.70')[0], 0.03),
        ('Li2CO3_vacancy', hop_endpoints('hop_2.70', (-0.02, -0.02, -0.02))[0], 0.05),
        ('Li2CO3_vacancy', hop_endpoints('hop_3.01', (0.02, 0.0, 0.02, 0.0, 0.0, 0.02))[1], 0.08),
        ('Li2CO3_vacancy', hop_endpoints('hop_2.70')[1], 0.05),
        ('Li2CO3_vacancy', hop_endpoints('hop_3.01')[1], 0.03),
        ('Li2CO3_vacancy', hop_endpoints('hop_2.70', (0.02, 0.02, 0.02))[0], 0.08),
    ]
    # the images of each hop twice, rattled 0.03, 0.05 and 0.08 Å (the second time in another order)
    hops = []
    for rattles in ((0.03, 0.05, 0.08), (0.05, 0.08, 0.03)):
        for name in HOPS:
            for image, rattle in zip(hop_images(name)[1:-1], rattles):
                hops.append((f'Li2CO3_{name}', image, rattle))
    # a fixed interleaving, so that the test rule (ids 5, 11, 17, 23) holds out a primitive cell, a vacancy cell and
    # one image of each hop (the last image of a second rattle for the shorter hop: its first three are trained on)
    order = [
        ('b', 0), ('v', 0), ('h', 0), ('b', 1), ('h', 1), ('b', 2),
        ('h', 2), ('b', 6), ('v', 1), ('b', 3), ('h', 3), ('v', 2),
        ('b', 4), ('h', 4), ('v', 3), ('h', 6), ('b', 5), ('h', 5),
        ('h', 7), ('v', 4), ('h', 9), ('b', 7), ('h', 10), ('h', 8),
        ('v', 5), ('h', 11),
    ]  # fmt: skip
    frames = []
    for position, (kind, index) in enumerate(order):
        if kind == 'b':
            config_type, atoms, strain, rattle = bulk[index]
            frames.append((config_type, _rattled(_strained(atoms, strain), rattle, 10 + position)))
        elif kind == 'v':
            config_type, atoms, rattle = vacancies[index]
            frames.append((config_type, _rattled(atoms, rattle, 10 + position)))
        else:
            config_type, atoms, rattle = hops[index]
            frames.append((config_type, _rattled(atoms, rattle, 10 + position)))
    for frame_id, (config_type, atoms) in enumerate(frames):
        atoms.info = {'frame_id': frame_id, 'config_type': config_type}
        atoms.info['split'] = 'test' if frame_id % TEST_EVERY == TEST_EVERY - 1 else 'train'
        atoms.calc = None
    return frames


def label_stage(path: pathlib.Path, limit: int | None, results: dict, add: list[pathlib.Path] = ()) -> None:
    """Label, one at a time, every frame of :func:`build_frames` not yet in ``path`` with the Li-Si script's stage
    (:func:`train_lisi_gpaw.label_stage`); record the Li2CO3 settings beside."""
    shared_label_stage(path, 1, limit, results, add, frames=build_frames())
    results['settings'] = {
        'gpaw': GPAW_FAST,
        'hops': {
            name: {'vacant_site': site, 'mover': mover, 'length_a': length}
            for name, (site, mover, length) in HOPS.items()
        },
        'hop_images': HOP_IMAGES,
        'test_every': TEST_EVERY,
    }
    if path.is_file():
        results['labels_sha256'] = hashlib.sha256(path.read_bytes()).hexdigest()


def write_report(results: dict, labels: pathlib.Path = LABELS, path: pathlib.Path = REPORT) -> None:
    lines = [
        '# A GPAW PBE Li2CO3 training set with Li vacancy hops and a `fast` MACE committee on it',
        '',
        'Generated by `benchmarks/train_li2co3_gpaw.py` from `benchmarks/train_li2co3_gpaw.json` and the labels in',
        f'`{labels.relative_to(REPO)}`.',
        '',
        '**Labels.** GPAW plane waves, PBE, spin-paired, the `fast` label protocol (300 eV, k-point density 1.5/Å',
        'Γ-centred, Marzari-Vanderbilt 0.1 eV, stress on), run by the project label engine',
        '(`aiida_sianode.engines.label.label`) in-process, one frame at a time, one thread. 300 eV is low for O and C;',
        'the set is for a screening committee consistent with its own labels, not converged PBE.',
        '**Frames.** Zabuyelite Li2CO3 (C2/c, Effenberger & Zemann 1979, the `sei_crystal` builder): the 12-atom',
        'primitive cell and the 24-atom conventional cell, ±3 % in volume, sheared by 2-3 %, rattled 0.03-0.1 Å;',
        '23-atom conventional cells with one Li atom removed (a neutral vacancy: the atom leaves with its electron, a',
        'hole in the O 2p band, spin-paired with smearing; no charged cell), rattled 0.03-0.08 Å; and the three IDPP',
        'images of each vacancy hop',
        '(the band `aiida-sianode property run neb` builds at the `fast` protocol), rattled 0.03, 0.05 and 0.08 Å:',
        '',
        '| hop | vacant Li site | hopping Li | Li-Li distance in the perfect cell (Å) |',
        '|---|---|---|---|',
        *[f'| {name} | {site} | {mover} | {length:.3f} |' for name, (site, mover, length) in HOPS.items()],
        '',
        'The Li-Li distances of the 24-atom cell are 2.70, 2.98, 3.01 and 3.14 Å; the 2.98 Å neighbour sits at that',
        'distance through two periodic images at once in this cell (no unique minimum image for a band), so the second',
        'hop is the 3.01 Å one. No frame comes from MD and none from a relaxed vacancy: round 0, unrelaxed.',
        f'One frame in {TEST_EVERY} (frame_id % {TEST_EVERY} = {TEST_EVERY - 1}) is the test set.',
        '',
        *_frame_table(labels, merge_prefixes=(), energies=True),
        '',
    ]
    lines += set_run_lines(results)
    lines += committee_section(results.get('training'))
    lines.append('')
    path.write_text('\n'.join(lines))


def main(argv=None) -> int:
    return set_main(argv, __doc__.splitlines()[0], label_stage, write_report, LI2CO3, RESULTS, LABELS)


if __name__ == '__main__':
    sys.exit(main())
