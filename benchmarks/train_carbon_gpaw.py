"""Benchmark: a small GPAW PBE carbon training set, labelled by the project's label engine, and a MACE committee on it.

The carbon counterpart of ``train_lisi_gpaw.py``, whose generic pieces it imports (the GPAW ``fast`` settings, the
one-frame labeller and writer, the serial-training lock); its own are the frames, the label loop over them, the
LabelData description, the saved models' README and the report. Two stages, each resumable:

1. ``--label``: builds the frames (see :func:`build_frames`: diamond and AB graphite, 8 atoms each, strained and
   rattled; random a-C cells of 8 and 16 atoms from the ``amorphous-carbon`` builder at 1.5-3.5 g/cm^3, rattled) and
   labels each with :func:`aiida_sianode.engines.label.label` (GPAW plane waves, PBE) at the ``fast`` protocol of
   ``protocols/label_gpaw.yaml`` (300 eV, k-point density 1.5/Å, Marzari-Vanderbilt 0.1 eV, stress on). Every
   finished label is appended at once to ``fixtures/datasets/carbon_gpaw_fast.extxyz`` (energy, forces, stress,
   ``frame_id``, ``config_type``, ``split``, wall and CPU seconds), so an interrupted run keeps its labels and a
   rerun labels only the missing frames. ``--add-frames FILE`` labels an extxyz file's frames too (ids after the
   built frames, the same test rule), as ``train_lisi_gpaw.py`` does.
2. ``--train``: the labels become LabelData nodes and two DatasetData (the frames with ``split=test``, one in six,
   form the test set; the rest are split 90/10 into train/valid, seed 0), and ``TrainCommitteeWorkChain`` trains a
   committee at the ``fast`` protocol (``--override`` as for ``aiida-sianode train``). With ``--save-models DIR``
   the members are copied to ``DIR/member_<i>.model``.

Cell sizes: one 24-atom a-C frame (2.5 g/cm^3, k-mesh 2x2x2) took 96 CPU-s at this protocol on the shared 2-core
machine, above the ~90 CPU-s a frame may cost here, and a 16-atom one 67 CPU-s (116 s wall at load 3.7); so the
frames have 8 atoms, with one 16-atom a-C cell per density.

Usage (repository root)::

    OMP_NUM_THREADS=1 python benchmarks/train_carbon_gpaw.py --label
    OMP_NUM_THREADS=1 AIIDA_PATH=$PWD/.aiida python benchmarks/train_carbon_gpaw.py --train --serial --profile sianode \
        --save-models fixtures/models/carbon_fast --override max_num_epochs=100 --override batch_size=2 \
        --override patience=100 --override stage_two=true --override stage_two_start=60
    python benchmarks/train_carbon_gpaw.py --report-only

The committee in ``fixtures/models/carbon_fast`` was trained with ``--profile sianode`` (the worktree profile): in the
throw-away configuration (no ``--profile``) the ``sianode-train`` code found in its storage pointed at the python of a
removed worktree and every TrainCalculation died at once (``No such file or directory``).
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
    _scaled,
    _strained,
    committee_section,
    set_main,
    set_run_lines,
)
from train_lisi_gpaw import label_stage as shared_label_stage  # noqa: E402

LABELS = REPO / 'fixtures' / 'datasets' / 'carbon_gpaw_fast.extxyz'
RESULTS = HERE / 'train_carbon_gpaw.json'
REPORT = HERE / 'train_carbon_gpaw.md'
CARBON = SetDescription(
    'carbon',
    'benchmarks/train_carbon_gpaw.py',
    'fixtures/datasets/carbon_gpaw_fast.extxyz',
    'benchmarks/train_carbon_gpaw.md',
)

#: PBE lattice constant of diamond, Å (PBE 3.57; experiment 3.567).
DIAMOND_PBE_A = 3.57
#: a-C densities of the random starts, g/cm^3 (the builder takes 1.5-3.3; 3.5 is a 3.3 cell compressed).
AMORPHOUS_DENSITIES = (1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3, 3.5)
#: Closest approach of the random starts, Å (C-C bonds are 1.2-1.6 Å).
AMORPHOUS_MIN_DISTANCE = 1.3

#: One frame in ``TEST_EVERY`` (frame_id % TEST_EVERY == TEST_EVERY - 1) is held out as the test set.
TEST_EVERY = 6


def amorphous_start(n_atoms: int, density: float, seed: int):
    """A random a-C cell from the ``amorphous-carbon`` builder at ``density`` (above 3.3 g/cm^3: built at 3.3 and
    compressed, positions following)."""
    from aiida_sianode.structures.carbon import A_C_DENSITY_RANGE, amorphous_carbon

    built = min(density, A_C_DENSITY_RANGE[1])
    atoms = amorphous_carbon(n_atoms, built, min_distance=AMORPHOUS_MIN_DISTANCE, seed=seed)
    return _scaled(atoms, (built / density) ** (1 / 3))


def build_frames() -> list[tuple[str, object]]:
    """Every frame to label, as ``(config_type, atoms)``, in a fixed order (the index is the frame id)."""
    from ase.build import bulk

    from aiida_sianode.structures.carbon import graphite

    frames = []
    diamond = bulk('C', 'diamond', a=DIAMOND_PBE_A, cubic=True)
    for index, (scale, rattle) in enumerate(((0.95, 0.03), (0.98, 0.05), (1.0, 0.05), (1.02, 0.05), (1.05, 0.03))):
        frames.append(('diamond', _rattled(_scaled(diamond, scale), rattle, 10 + index)))
    frames.append(('diamond', _rattled(_strained(diamond, (0.03, -0.02, 0.0, 0.03, 0.0, 0.0)), 0.1, 15)))
    frames.append(('diamond', _rattled(diamond, 0.15, 16)))
    cell = graphite((2, 1, 1))
    for index, (strain, rattle) in enumerate(
        (
            ((0.0, 0.0, 0.0), 0.03),
            ((-0.03, -0.03, 0.0), 0.05),
            ((0.03, 0.03, 0.0), 0.05),
            ((0.0, 0.0, -0.12), 0.05),  # interlayer distance 2.95 Å
            ((0.0, 0.0, 0.08), 0.05),
            ((0.02, -0.02, 0.0, 0.0, 0.0, 0.03), 0.1),
            ((0.0, 0.0, 0.0), 0.15),
        )
    ):
        frames.append(('graphite', _rattled(_strained(cell, strain), rattle, 20 + index)))
    for index, density in enumerate(AMORPHOUS_DENSITIES):
        for n_atoms, seed, rattle in ((16, 0, 0.05), (8, 1, 0.1), (8, 2, 0.05), (8, 3, 0.1)):
            atoms = _rattled(amorphous_start(n_atoms, density, seed), rattle, 100 + 10 * index + seed)
            frames.append((f'aC_random_{density:g}', atoms))
    for frame_id, (config_type, atoms) in enumerate(frames):
        atoms.info = {'frame_id': frame_id, 'config_type': config_type}
        atoms.info['split'] = 'test' if frame_id % TEST_EVERY == TEST_EVERY - 1 else 'train'
        atoms.calc = None
    return frames


def label_stage(path: pathlib.Path, limit: int | None, results: dict, add: list[pathlib.Path] = ()) -> None:
    """Label, one at a time, every frame of :func:`build_frames` (then those of the ``add`` files) not yet in ``path``
    with the Li-Si script's stage (:func:`train_lisi_gpaw.label_stage`); record the carbon settings beside."""
    shared_label_stage(path, 1, limit, results, add, frames=build_frames())
    results['settings'] = {
        'gpaw': GPAW_FAST,
        'diamond_a': DIAMOND_PBE_A,
        'amorphous_densities_g_cm3': list(AMORPHOUS_DENSITIES),
        'amorphous_min_distance_a': AMORPHOUS_MIN_DISTANCE,
        'test_every': TEST_EVERY,
    }
    if path.is_file():
        results['labels_sha256'] = hashlib.sha256(path.read_bytes()).hexdigest()


def write_report(results: dict, labels: pathlib.Path = LABELS, path: pathlib.Path = REPORT) -> None:
    lines = [
        '# A GPAW PBE carbon training set and a `fast` MACE committee on it',
        '',
        'Generated by `benchmarks/train_carbon_gpaw.py` from `benchmarks/train_carbon_gpaw.json` and the labels in',
        f'`{labels.relative_to(REPO)}`.',
        '',
        '**Labels.** GPAW plane waves, PBE, the `fast` label protocol (300 eV, k-point density 1.5/Å Γ-centred,',
        'Marzari-Vanderbilt 0.1 eV, stress on), run by the project label engine (`aiida_sianode.engines.label.label`)',
        'in-process, one frame at a time, one thread. 300 eV is low for carbon (PBE total energies of C converge near',
        '500 eV); the set is for a screening committee, consistent with its own labels, not converged PBE.',
        '**Cell size:** one 24-atom random a-C frame (2.5 g/cm^3, 2x2x2 k-points, 15 SCF iterations) cost 96 CPU-s',
        '(102 s wall) at load 1.7, over the ~90 CPU-s allowed a frame here, and a 16-atom one 67 CPU-s (116 s wall at',
        'load 3.7); so the frames have 8 atoms, with one 16-atom a-C cell per density (the table gives the costs).',
        f'**Frames:** diamond (8-atom cubic cell, PBE a = {DIAMOND_PBE_A} Å, ±5 % in lattice constant, sheared,',
        'rattled 0.03-0.15 Å), AB graphite (8 atoms, the `graphite` builder at the measured cell, ±3 % in plane,',
        '-12 %/+8 % along c, sheared, rattled) and random a-C cells from the `amorphous-carbon` builder (one of 16',
        f'and three of 8 atoms per density, {AMORPHOUS_MIN_DISTANCE} Å apart at least, at',
        f'{", ".join(f"{d:g}" for d in AMORPHOUS_DENSITIES)} g/cm^3, 3.5 built at 3.3 and compressed; rattled',
        '0.05-0.1 Å). Unrelaxed random starts, not MD snapshots:',
        'no liquid-like frames in round 0 (no carbon potential existed to make them cheaply; the committee itself',
        'makes them in the active-learning round).',
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
    return set_main(argv, __doc__.splitlines()[0], label_stage, write_report, CARBON, RESULTS, LABELS)


if __name__ == '__main__':
    sys.exit(main())
