"""Benchmark: a small GPAW PBE Li-Si training set, labelled by the project's label engine, and a MACE committee on it.

Two stages, each resumable:

1. ``--label``: builds the frames (see :func:`build_frames`: bcc Li, diamond Si, Li at interstitial sites of c-Si,
   the small crystalline silicides LiSi, Li13Si4 and Li15Si4, strained and rattled, and amorphous Li_xSi cells of
   12-24 atoms from the ``lixsi`` builder for x = 0.5-3.75) and labels each with
   :func:`aiida_sianode.engines.label.label` (GPAW plane waves, PBE) at the ``fast`` protocol of
   ``protocols/label_gpaw.yaml`` (300 eV, k-point density 1.5/Å, Marzari-Vanderbilt 0.1 eV, stress on). Every
   finished label is appended at once to ``fixtures/datasets/lisi_gpaw_fast.extxyz`` (energy, forces, stress,
   ``frame_id``, ``config_type``, ``split``, wall and CPU seconds), so an interrupted run keeps its labels and a
   rerun labels only the missing frames. A failed SCF is recorded in ``benchmarks/train_lisi_gpaw.json``.
   ``--add-frames FILE`` (repeatable, in a fixed order) labels the frames of an extxyz file as well, with frame ids
   after those of ``build_frames`` and the same test rule; the files and their sha256 go to the JSON record.
   ``--collect FILE`` writes such a file: an active-learning round on the committee in ``--models`` (see
   :func:`collect_frames`: the lithiation property's ``fast`` anneals and relaxations redone per member, the frames
   where the members disagree most). Round 1, on the 34-frame committee, made
   ``fixtures/datasets/lisi_gpaw_fast_al1.extxyz``. ``--collect-md FILE`` is round 2 (see :func:`collect_md_frames`):
   production MD (``aiida_sianode.properties.md``, no AiiDA) of the diffusion benchmark's amorphous Li_xSi cells
   (x = 1 and 3.5) at 600-1200 K, each member driving in turn, the others scoring sampled frames; the frame of
   largest disagreement of each run, then two Li7Si3 crystal frames; on the 63-frame committee it made
   ``fixtures/datasets/lisi_gpaw_fast_al2.extxyz``.
2. ``--train``: the labels become LabelData nodes and two DatasetData (the frames marked ``split=test``, one in six,
   form the test set; the rest are split 90/10 into train/valid, seed 0), and ``TrainCommitteeWorkChain`` trains a
   committee at the ``fast`` protocol (``--override`` as for ``aiida-sianode train``). With ``--save-models DIR``
   the members are copied to ``DIR/member_<i>.model``.

Usage (repository root)::

    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --label --workers 2
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --collect fixtures/datasets/lisi_gpaw_fast_al1.extxyz \
        --models fixtures/models/lisi_fast
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --label \
        --add-frames fixtures/datasets/lisi_gpaw_fast_al1.extxyz
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --collect-md fixtures/datasets/lisi_gpaw_fast_al2.extxyz \
        --models fixtures/models/lisi_fast
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --label --workers 1 \
        --add-frames fixtures/datasets/lisi_gpaw_fast_al1.extxyz \
        --add-frames fixtures/datasets/lisi_gpaw_fast_al2.extxyz
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --train --serial --save-models fixtures/models/lisi_fast \
        --override max_num_epochs=100 --override batch_size=2 --override patience=100 \
        --override stage_two=true --override stage_two_start=50
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --compare-old OLD_COMMITTEE_DIR --before-ids 63
    OMP_NUM_THREADS=1 python benchmarks/train_lisi_gpaw.py --compare-old OLD_COMMITTEE_DIR \
        --new-ids 67,68,69,70,71,75,76  # the 72-frame committee against the 79-frame one
    python benchmarks/train_lisi_gpaw.py --report-only

Without ``--profile`` the training runs in a throw-away AiiDA configuration, as ``train_mlearn_si.py`` does; with
``--profile NAME`` (the committee in `fixtures/models/lisi_fast` was trained with ``--profile sianode``, the worktree
profile) the members stay there as PotentialData for ``benchmarks/properties_lisi.py --potentials``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from train_mlearn_si import (  # noqa: E402  (a sibling benchmark script, not a package)
    LoadSampler,
    one_job_at_a_time,
    processor_name,
    run_protocol,
    setup_environment,
)

LABELS = REPO / 'fixtures' / 'datasets' / 'lisi_gpaw_fast.extxyz'


@dataclasses.dataclass(frozen=True)
class SetDescription:
    """What the shared stages write about a GPAW training set: its name, the script that makes it (for the labels'
    level of theory and the committee's README), its labels file and report, relative to the repository."""

    name: str
    script: str
    labels: str
    report: str


LISI = SetDescription(
    'Li-Si', 'benchmarks/train_lisi_gpaw.py', 'fixtures/datasets/lisi_gpaw_fast.extxyz', 'benchmarks/train_lisi_gpaw.md'
)
RESULTS = HERE / 'train_lisi_gpaw.json'
REPORT = HERE / 'train_lisi_gpaw.md'

#: The ``fast`` GPAW label protocol (protocols/label_gpaw.yaml), spelled out so that the labels' settings are on record.
GPAW_FAST = {
    'cutoff_ev': 300.0,
    'kpoint_density': 1.5,
    'smearing': {'type': 'marzari-vanderbilt', 'width_ev': 0.1},
    'maxiter': 300,
    'compute_stress': True,
}

#: PBE-like lattice constants (Å) the crystalline frames start from: bcc Li (PBE 3.43-3.44) and diamond Si (PBE 5.47).
LI_BCC_A = 3.44
SI_PBE_A = 5.47

#: Amorphous Li_xSi: x values and Si atoms per cell (8-24 atoms in all).
AMORPHOUS_X = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.75)

#: One frame in ``TEST_EVERY`` (frame_id % TEST_EVERY == TEST_EVERY - 1) is held out as the test set.
TEST_EVERY = 6


def _scaled(atoms, scale: float):
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array * scale, scale_atoms=True)
    return atoms


def _rattled(atoms, stdev: float, seed: int):
    atoms = atoms.copy()
    if stdev > 0:
        atoms.rattle(stdev=stdev, seed=seed)
    return atoms


def _strained(atoms, strain):
    """Apply the symmetric strain (Voigt xx, yy, zz, yz, xz, xy) to the cell, atoms following."""
    from aiida_sianode.structures.silicon import strain_matrix

    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain_matrix(strain)), scale_atoms=True)
    return atoms


def amorphous_n_si(x: float, max_atoms: int = 24) -> int:
    """Si atoms of an amorphous Li_xSi cell: at most 8, and at most ``max_atoms`` atoms in all (x * n_si integer)."""
    for n_si in range(8, 0, -1):
        if n_si * (1 + x) <= max_atoms and abs(x * n_si - round(x * n_si)) < 1e-9:
            return n_si
    raise ValueError(f'no cell of at most {max_atoms} atoms has x = {x}')


def build_frames() -> list[tuple[str, object]]:
    """Every frame to label, as ``(config_type, atoms)``, in a fixed order (the index is the frame id)."""
    from ase.build import bulk

    from aiida_sianode.structures.lithiation import lixsi, lixsi_crystal
    from aiida_sianode.structures.silicon import diamond_silicon, interstitial_sites

    frames = []
    li = bulk('Li', 'bcc', a=LI_BCC_A, cubic=True)
    for scale in (0.96, 0.98, 1.0, 1.02, 1.04):
        frames.append(('Li_bcc', _rattled(_scaled(li, scale), 0.02, 1)))
    for index, scale in enumerate((0.97, 1.03)):
        frames.append(('Li_bcc', _rattled(_scaled(li.repeat(2), scale), 0.12, 10 + index)))
    si = diamond_silicon((1, 1, 1), SI_PBE_A)
    for index, scale in enumerate((0.97, 0.99, 1.01, 1.03)):
        frames.append(('Si_diamond', _rattled(_scaled(si, scale), 0.05, 20 + index)))
    frames.append(('Si_diamond', _rattled(_strained(si, (0.02, -0.01, 0.0, 0.02, 0.0, 0.0)), 0.15, 25)))
    frames.append(('Si_diamond', _rattled(si, 0.2, 26)))
    tetrahedral = interstitial_sites((1, 1, 1), SI_PBE_A, 'tetrahedral')[0]
    hexagonal = interstitial_sites((1, 1, 1), SI_PBE_A, 'hexagonal')
    hexagonal = hexagonal[np.argmin(np.linalg.norm(hexagonal - tetrahedral, axis=1))]
    for index, (where, fraction, rattle) in enumerate(
        (('T', 0.0, 0.0), ('T', 0.0, 0.08), ('T-H', 0.5, 0.05), ('H', 1.0, 0.0), ('H', 1.0, 0.08))
    ):
        cell = si.copy()
        cell.append('Li')
        cell.positions[-1] = tetrahedral + fraction * (hexagonal - tetrahedral)
        frames.append((f'Li_in_Si_{where}', _rattled(cell, rattle, 30 + index)))
    lisi = lixsi_crystal('LiSi', primitive=True)
    frames.append(('LiSi', _rattled(lisi, 0.03, 40)))
    frames.append(('LiSi', _rattled(_scaled(lisi, 0.97), 0.08, 41)))
    frames.append(('LiSi', _rattled(_scaled(lisi, 1.03), 0.08, 42)))
    frames.append(('LiSi', _rattled(_strained(lisi, (0.02, 0.0, -0.02, 0.0, 0.02, 0.0)), 0.12, 43)))
    li13 = lixsi_crystal('Li13Si4')
    frames.append(('Li13Si4', _rattled(li13, 0.05, 50)))
    frames.append(('Li13Si4', _rattled(_scaled(li13, 0.98), 0.12, 51)))
    li15 = lixsi_crystal('Li15Si4', primitive=True)
    frames.append(('Li15Si4', _rattled(li15, 0.03, 60)))
    frames.append(('Li15Si4', _rattled(_scaled(li15, 0.97), 0.1, 61)))
    frames.append(('Li15Si4', _rattled(_scaled(li15, 1.03), 0.1, 62)))
    for x in AMORPHOUS_X:
        n_si = amorphous_n_si(x)
        for seed in (0, 1):
            start = lixsi(x=x, host_kind='random', n_si=n_si, seed=seed, min_distance=2.2)
            variants = ((1.0, 0.05), (0.95 ** (1 / 3), 0.1)) if seed == 0 else ((1.0, 0.1), (1.05 ** (1 / 3), 0.15))
            for index, (scale, rattle) in enumerate(variants):
                atoms = _rattled(_scaled(start, scale), rattle, 100 + 10 * seed + index)
                atoms.info = {'x': x}
                frames.append((f'LixSi_amorphous_x{x:g}', atoms))
    for frame_id, (config_type, atoms) in enumerate(frames):
        atoms.info = {'frame_id': frame_id, 'config_type': config_type}
        atoms.info['split'] = 'test' if frame_id % TEST_EVERY == TEST_EVERY - 1 else 'train'
        atoms.calc = None
    return frames


def added_frames(files: list[pathlib.Path], first_id: int) -> list[tuple[str, object]]:
    """The frames of ``files`` (extxyz, e.g. from ``--collect``), in the order given, as ``(config_type, atoms)``
    with frame ids from ``first_id`` on and the same test rule as :func:`build_frames`; ``config_type`` from each
    frame's info. Give the same files in the same order on every run: the ids follow from it."""
    from ase.io import read

    frames = []
    for path in files:
        if not path.is_file():
            raise SystemExit(f'--add-frames: no such file: {path}')
        for index, atoms in enumerate(read(path, index=':', format='extxyz')):
            config_type = str(atoms.info.get('config_type', path.stem))
            frame_id = first_id + len(frames)
            atoms.calc = None
            atoms.info = {
                'frame_id': frame_id,
                'config_type': config_type,
                'split': 'test' if frame_id % TEST_EVERY == TEST_EVERY - 1 else 'train',
                'source': f'{path.name}:{index}',
            }
            frames.append((config_type, atoms))
    return frames


# --------------------------------------------------------------------------------------------------------------------
# active learning: frames where the committee's members disagree, from the lithiation property's own steps

#: Round-1 candidates (``--collect``): the lithiation property's ``fast`` structures that the 34-frame committee broke
#: on (member 0 collapsed a-LiSi to -142.6 eV/atom and Li13Si4 to -0.89 eV/atom; member 2 left a-Li5Si2 unconverged).
COLLECT_CRYSTALS = ('Li13Si4',)
COLLECT_AMORPHOUS_X = (1.0, 2.5)
#: a frame every this many MD steps of the anneal / FIRE steps of the relaxation becomes a candidate
COLLECT_ANNEAL_EVERY = 50
COLLECT_RELAX_EVERY = 10


def _repo_path(path: pathlib.Path) -> str:
    """``path`` relative to the repository when it lies inside it (as the records keep it), else as given."""
    return str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)


def _snapshot(atoms, **info):
    frame = atoms.copy()
    frame.calc = None
    frame.info = dict(info)
    return frame


def member_trajectories(model: pathlib.Path, member: int, dtype: str = 'float64') -> list:
    """Redo the ``fast`` lithiation property's steps on the collected structures with one member driving (its
    ``amorphous_start``, the same Langevin anneal as ``lithiation.anneal``, then FIRE + ``FrechetCellFilter`` as
    ``common.relax``, to the protocol's force tolerance and step limit), keeping a snapshot every few steps."""
    from ase import units
    from ase.filters import FrechetCellFilter
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.optimize import FIRE

    from aiida_sianode.engines.property import load_member_calculator
    from aiida_sianode.properties.common import get_settings
    from aiida_sianode.properties.lithiation import amorphous_name, amorphous_start
    from aiida_sianode.structures.lithiation import lixsi_crystal

    settings = get_settings('lithiation', 'fast')
    amorphous, relax_settings = settings['amorphous'], settings['relax']
    calculator = load_member_calculator(model, 'cpu', dtype)
    starts = [(name, lixsi_crystal(name, primitive=True), False) for name in COLLECT_CRYSTALS]
    for x in COLLECT_AMORPHOUS_X:
        atoms = amorphous_start(x, settings)
        starts.append((amorphous_name(atoms), atoms, True))
    frames = []

    def keep(stage: str, driver, atoms, name: str) -> None:
        frames.append(_snapshot(atoms, structure=name, member=member, stage=stage, step=driver.nsteps))

    for name, atoms, anneal in starts:
        atoms.info = {}
        atoms.calc = calculator
        if anneal:
            temperature = float(amorphous['anneal_temperature_k'])
            rng = np.random.default_rng(int(amorphous['seed']))
            MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
            dynamics = Langevin(
                atoms,
                timestep=float(amorphous['timestep_fs']) * units.fs,
                temperature_K=temperature,
                friction=float(amorphous['friction_per_fs']) / units.fs,
                fixcm=False,
                rng=rng,
            )
            dynamics.attach(keep, COLLECT_ANNEAL_EVERY, 'anneal', dynamics, atoms, name)
            dynamics.run(int(amorphous['anneal_steps']))
            atoms.set_momenta(np.zeros((len(atoms), 3)))
        optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        optimizer.attach(keep, COLLECT_RELAX_EVERY, 'relax', optimizer, atoms, name)
        optimizer.run(fmax=float(relax_settings['fmax_ev_a']), steps=int(relax_settings['max_steps']))
        frames.append(_snapshot(atoms, structure=name, member=member, stage='end', step=optimizer.nsteps))
    return frames


def collect_frames(
    models: pathlib.Path,
    out: pathlib.Path,
    n_frames: int = 8,
    per_group: int = 2,
    min_distance: float = 1.5,
    max_atoms: int = 34,
    trust: float = 0.25,
    min_separation: int = 30,
) -> dict:
    """Write the ``n_frames`` candidates where the committee in ``models`` disagrees most to ``out`` (extxyz).

    Candidates: :func:`member_trajectories` of every member, each scored with the whole committee (largest atomic
    force deviation, energy std per atom). Dropped: frames with two atoms closer than ``min_distance`` Å (the end of a
    collapse: far from any state a property visits, and a PAW overlap for GPAW) or more than ``max_atoms`` atoms.
    Key frames first: per (driving member, structure) the relaxation's end point, or the last frame before a collapse
    past ``min_distance``, and the annealed amorphous cell, each if its force deviation is above ``trust`` eV/Å; then
    the other frames. Within each, by falling force deviation, at most ``per_group`` per (member, structure) and none
    within ``min_separation`` steps of a chosen frame of the same trajectory stage. Returns a summary for the record."""
    from ase.io import write

    from aiida_sianode.engines.committee import committee_predict, load_committee_calculator
    from aiida_sianode.properties.common import shortest_distance

    paths = sorted(models.glob('member_*.model'))
    if not paths:
        raise SystemExit(f'no member_*.model files in {models}')
    start_cpu, start = time.process_time(), time.perf_counter()
    candidates = [frame for index, path in enumerate(paths) for frame in member_trajectories(path, index)]
    committee = load_committee_calculator([str(path) for path in paths])
    for frame in candidates:
        prediction = committee_predict(committee, frame)
        frame.info['max_force_deviation_ev_a'] = round(prediction['max_force_deviation'], 4)
        frame.info['energy_std_mev_atom'] = round(1000 * prediction['energy_std_per_atom'], 2)
        frame.info['member_energies_ev_atom'] = ' '.join(f'{e / len(frame):.4f}' for e in prediction['energies'])
        frame.info['shortest_distance_a'] = round(shortest_distance(frame, cutoff=4.0)[0], 3)
    groups = {}
    for frame in candidates:
        if frame.info['shortest_distance_a'] >= min_distance and len(frame) <= max_atoms:
            groups.setdefault((frame.info['member'], frame.info['structure']), []).append(frame)
    key = set()
    for frames in groups.values():
        key.add(id(frames[-1]))  # the end point, or the last frame before the collapse
        key.update(id(frame) for frame in frames if frame.info['stage'] == 'relax' and frame.info['step'] == 0)
    eligible = [frame for frames in groups.values() for frame in frames]
    ranked = sorted(
        eligible,
        key=lambda frame: (
            not (id(frame) in key and frame.info['max_force_deviation_ev_a'] >= trust),
            -frame.info['max_force_deviation_ev_a'],
        ),
    )
    chosen = []
    for frame in ranked:
        group = (frame.info['member'], frame.info['structure'])
        mates = [other for other in chosen if (other.info['member'], other.info['structure']) == group]
        close = any(
            other.info['stage'] == frame.info['stage'] and abs(other.info['step'] - frame.info['step']) < min_separation
            for other in mates
        )
        if len(mates) < per_group and not close:
            chosen.append(frame)
        if len(chosen) == n_frames:
            break
    chosen.sort(key=lambda frame: (frame.info['structure'], frame.info['member'], frame.info['step']))
    for frame in chosen:
        frame.info['config_type'] = f'al1_{frame.info["structure"]}'
    out.parent.mkdir(parents=True, exist_ok=True)
    write(out, chosen, format='extxyz')
    return {
        'models': str(models),
        'model_sha256': [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths],
        'file': str(out),
        'candidates': len(candidates),
        'dropped_short_distance': sum(frame.info['shortest_distance_a'] < min_distance for frame in candidates),
        'dropped_size': sum(len(frame) > max_atoms for frame in candidates),
        'chosen': len(chosen),
        'rule': {
            'n_frames': n_frames,
            'per_group': per_group,
            'min_distance_a': min_distance,
            'max_atoms': max_atoms,
            'trust_ev_a': trust,
            'min_separation_steps': min_separation,
        },
        'wall_time_s': time.perf_counter() - start,
        'cpu_time_s': time.process_time() - start_cpu,
        'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
        'groups': _group_summary(candidates),
    }


def _group_summary(candidates: list) -> list[dict]:
    """Per (member, structure): the end point's energy per atom and shortest distance, the largest deviation."""
    groups = {}
    for frame in candidates:
        groups.setdefault((frame.info['member'], frame.info['structure']), []).append(frame)
    rows = []
    for (member, structure), frames in sorted(groups.items()):
        end = frames[-1]
        rows.append(
            {
                'member': member,
                'structure': structure,
                'frames': len(frames),
                'end_member_energies_ev_atom': end.info['member_energies_ev_atom'],
                'end_shortest_distance_a': end.info['shortest_distance_a'],
                'end_relax_steps': end.info['step'],
                'max_force_deviation_ev_a': max(frame.info['max_force_deviation_ev_a'] for frame in frames),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------------------------
# active learning, round 2: frames of production MD, where the diffusion benchmark found the committee untrusted

#: Round-2 candidates (``--collect-md``): the amorphous cells of ``benchmarks/properties_lisi.py``'s diffusion cases
#: (``lixsi``, random a-Si host, seed 0, Li 2.0 Å apart: x = 1 with 16 Si, 32 atoms; x = 3.5 with 8 Si, 36 atoms)
COLLECT_MD_CELLS = ((1.0, 16), (3.5, 8))
COLLECT_MD_TEMPERATURES_K = (600.0, 900.0, 1200.0)
#: each (x, T, driving member) runs this long: the diffusion runs' untrusted frames appear within the first 0.1 ps
COLLECT_MD_LENGTH_PS = 0.5
#: sampled frames before this step are left out: every member starts from the same cell and velocities (by step 50
#: the members' trajectories differ; at x = 3.5 members 0 and 1 bring two atoms within 1.5 Å in 50-100 steps)
COLLECT_MD_MIN_STEP = 50
#: crystal frames added with round 2 (the phases the set lacked; Li12Si7's cell has 152 atoms, over the limit)
COLLECT_MD_CRYSTALS = (('Li7Si3', 1.0, 0.05, 70), ('Li7Si3', 0.98, 0.1, 71))


def md_cell(x: float, n_si: int):
    """The diffusion benchmark's start cell (``properties_lisi.structures``): ``lixsi``, random host, seed 0."""
    from aiida_sianode.structures.lithiation import lixsi

    atoms = lixsi(x=x, host_kind='random', n_si=n_si, seed=0, min_distance=2.0)
    atoms.info = {}
    return atoms


def md_settings(temperature_k: float, models: list[pathlib.Path], member: int) -> dict:
    """The ``fast`` diffusion protocol's MD settings (Bussi NVT, 1 fs, trust levels 0.05 / 0.25 eV/Å, runaway stop at
    5x T) at ``temperature_k``, ``COLLECT_MD_LENGTH_PS`` long, a frame written at every committee sample."""
    from aiida_sianode.properties.common import get_settings

    settings = dict(get_settings('diffusion', 'fast')['md'])
    settings.update(
        temperature_k=temperature_k,
        length_ps=COLLECT_MD_LENGTH_PS,
        equilibration_ps=0.0,
        trajectory_interval=settings['sample_interval'],
        thermo_interval=settings['sample_interval'],
        checkpoint_interval=10**6,
        committee_models=[str(path) for path in models],
        member_index=member,
    )
    return settings


def md_candidates(models: list[pathlib.Path], workdir: pathlib.Path, dtype: str = 'float64') -> tuple[list, list]:
    """Run production MD (:func:`aiida_sianode.properties.md.run_md`, the plain module) of every
    ``COLLECT_MD_CELLS`` cell at every ``COLLECT_MD_TEMPERATURES_K`` with every member driving, the other members
    scoring a frame every ``sample_interval`` steps; return (every sampled frame with its committee score and
    ``x``, ``temperature_k``, ``member``, ``step`` in ``info``; one summary per run)."""
    from aiida_sianode.engines.property import load_member_calculator
    from aiida_sianode.properties.md import COMMITTEE, read_jsonl, read_trajectory, run_md

    candidates, runs = [], []
    for x, n_si in COLLECT_MD_CELLS:
        start = md_cell(x, n_si)
        for temperature in COLLECT_MD_TEMPERATURES_K:
            for member, model in enumerate(models):
                folder = workdir / f'x{x:g}_T{temperature:g}_m{member}'
                calculator = load_member_calculator(model, 'cpu', dtype)
                summary = run_md(start, calculator, md_settings(temperature, models, member), folder)
                scores = {record['step']: record for record in read_jsonl(folder / COMMITTEE)}
                for frame in read_trajectory(folder):
                    step = int(frame.info['step'])
                    if step not in scores:
                        continue
                    frame.wrap()  # the MD writes unwrapped positions (for MSDs)
                    frame = _snapshot(
                        frame,
                        structure=f'a_Li{x:g}Si',
                        x=x,
                        temperature_k=temperature,
                        member=member,
                        step=step,
                        max_force_deviation_ev_a=round(scores[step]['max_force_deviation'], 4),
                        energy_std_mev_atom=round(1000 * scores[step]['energy_std_per_atom'], 2),
                    )
                    candidates.append(frame)
                runs.append(
                    {
                        'x': x,
                        'natoms': len(start),
                        'temperature_k': temperature,
                        'member': member,
                        'stop_reason': summary['stop_reason'],
                        'steps': summary['n_steps'],
                        'committee_samples': summary['committee_samples'],
                        'fraction_above_upper': summary['fraction_above_upper'],
                        'fraction_above_lower': summary['fraction_above_lower'],
                        'max_force_deviation_mean_ev_a': summary['max_force_deviation_mean'],
                        'wall_time_s': round(summary['wall_time_s'], 1),
                        'cpu_time_s': round(summary['cpu_time_s'], 1),
                    }
                )
                print(
                    f'x = {x:g}, {temperature:g} K, member {member}: {summary["stop_reason"]} after '
                    f'{summary["n_steps"]} steps, {100 * (summary["fraction_above_upper"] or 0):.0f} % of '
                    f'{summary["committee_samples"]} samples above the upper trust level, '
                    f'{summary["wall_time_s"]:.0f} s',
                    flush=True,
                )
    return candidates, runs


def crystal_frames_round2() -> list:
    """``COLLECT_MD_CRYSTALS``: the DFT cell of each phase (``lixsi_crystal``) scaled and rattled, as the crystal
    frames of :func:`build_frames` are."""
    from aiida_sianode.structures.lithiation import lixsi_crystal

    frames = []
    for name, scale, rattle, seed in COLLECT_MD_CRYSTALS:
        atoms = _rattled(_scaled(lixsi_crystal(name, primitive=True), scale), rattle, seed)
        frames.append(_snapshot(atoms, config_type=f'al2_{name}', structure=name, scale=scale, rattle_a=rattle))
    return frames


def _rmsd(first, second) -> float:
    """Root mean square displacement (Å, minimum image) between two frames of one cell and atom order; infinite for
    frames of different cells."""
    if len(first) != len(second) or not np.allclose(first.cell.array, second.cell.array):
        return float('inf')
    delta = first.get_scaled_positions() - second.get_scaled_positions()
    delta = (delta - np.round(delta)) @ first.cell.array
    return float(np.sqrt((delta**2).sum(axis=1).mean()))


def collect_md_frames(
    models: pathlib.Path,
    out: pathlib.Path,
    n_frames: int = 15,
    min_distance: float = 1.5,
    max_atoms: int = 40,
    min_rmsd: float = 0.3,
    workdir: pathlib.Path | None = None,
) -> dict:
    """Active-learning round 2: write the ``n_frames`` MD frames where the committee in ``models`` disagrees most,
    then the ``COLLECT_MD_CRYSTALS`` frames, to ``out`` (extxyz).

    Candidates: :func:`md_candidates`. Dropped: frames before ``COLLECT_MD_MIN_STEP``, with two atoms closer than
    ``min_distance`` Å (a collapse: far from any state a property visits, a PAW overlap for GPAW), or with more than
    ``max_atoms`` atoms. Kept, by falling force deviation, until ``n_frames``: at most one frame per run (x, T,
    driving member), and none within ``min_rmsd`` Å (root mean square displacement, minimum image) of a frame kept
    already (the members' runs of one cell start alike). Returns a summary for the record."""
    from ase.io import write

    from aiida_sianode.properties.common import shortest_distance

    paths = sorted(models.glob('member_*.model'))
    if not paths:
        raise SystemExit(f'no member_*.model files in {models}')
    start_cpu, start = time.process_time(), time.perf_counter()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='collect_md_')))
        candidates, runs = md_candidates(paths, pathlib.Path(workdir))
    eligible, dropped = [], {'early': 0, 'short_distance': 0, 'size': 0, 'near_duplicate': 0}
    for frame in candidates:
        if frame.info['step'] < COLLECT_MD_MIN_STEP:
            dropped['early'] += 1
            continue
        if len(frame) > max_atoms:
            dropped['size'] += 1
            continue
        frame.info['shortest_distance_a'] = round(shortest_distance(frame, cutoff=4.0)[0], 3)
        if frame.info['shortest_distance_a'] < min_distance:
            dropped['short_distance'] += 1
            continue
        eligible.append(frame)
    chosen, runs_taken = [], set()
    for frame in sorted(eligible, key=lambda frame: -frame.info['max_force_deviation_ev_a']):
        run = (frame.info['x'], frame.info['temperature_k'], frame.info['member'])
        if run in runs_taken:
            continue
        if any(_rmsd(frame, other) < min_rmsd for other in chosen):
            dropped['near_duplicate'] += 1
            continue
        chosen.append(frame)
        runs_taken.add(run)
        if len(chosen) == n_frames:
            break
    chosen.sort(key=lambda frame: (frame.info['x'], frame.info['temperature_k'], frame.info['member']))
    for frame in chosen:
        frame.info['config_type'] = f'al2_md_x{frame.info["x"]:g}'
    crystals = crystal_frames_round2()
    out.parent.mkdir(parents=True, exist_ok=True)
    write(out, chosen + crystals, format='extxyz')
    return {
        'models': _repo_path(models),
        'model_sha256': [hashlib.sha256(path.read_bytes()).hexdigest() for path in paths],
        'file': _repo_path(out),
        'sha256': hashlib.sha256(out.read_bytes()).hexdigest(),
        'runs': runs,
        'candidates': len(candidates),
        'dropped': dropped,
        'chosen': [
            {
                key: frame.info[key]
                for key in ('x', 'temperature_k', 'member', 'step', 'max_force_deviation_ev_a', 'energy_std_mev_atom')
            }
            | {'natoms': len(frame), 'shortest_distance_a': frame.info['shortest_distance_a']}
            for frame in chosen
        ],
        'crystals': [
            {'structure': name, 'scale': scale, 'rattle_a': rattle, 'seed': seed, 'natoms': len(frame)}
            for (name, scale, rattle, seed), frame in zip(COLLECT_MD_CRYSTALS, crystals, strict=True)
        ],
        'rule': {
            'n_frames': n_frames,
            'min_distance_a': min_distance,
            'max_atoms': max_atoms,
            'min_step': COLLECT_MD_MIN_STEP,
            'min_rmsd_a': min_rmsd,
            'length_ps': COLLECT_MD_LENGTH_PS,
            'temperatures_k': list(COLLECT_MD_TEMPERATURES_K),
            'cells': [{'x': x, 'n_si': n_si} for x, n_si in COLLECT_MD_CELLS],
            'md': {
                key: value
                for key, value in md_settings(COLLECT_MD_TEMPERATURES_K[0], paths, 0).items()
                if key not in ('committee_models', 'member_index', 'temperature_k')
            },
        },
        'wall_time_s': time.perf_counter() - start,
        'cpu_time_s': time.process_time() - start_cpu,
        'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
    }


def committee_errors(models: pathlib.Path, frames: list, dtype: str = 'float64') -> dict:
    """Energy (meV/atom) and force (eV/Å) RMSE of each member of ``models`` and of the committee mean on ``frames``
    (labelled ``ase.Atoms``), float64."""
    from aiida_sianode.engines.property import load_member_calculator

    paths = sorted(models.glob('member_*.model'))
    if not paths:
        raise SystemExit(f'no member_*.model files in {models}')
    reference_e = np.array([atoms.get_potential_energy() / len(atoms) for atoms in frames])
    reference_f = [atoms.get_forces() for atoms in frames]
    energies, forces = [], []
    for path in paths:
        calculator = load_member_calculator(path, 'cpu', dtype)
        member_e, member_f = [], []
        for atoms in frames:
            frame = atoms.copy()
            frame.calc = calculator
            member_e.append(frame.get_potential_energy() / len(frame))
            member_f.append(frame.get_forces())
        energies.append(np.array(member_e))
        forces.append(member_f)

    def rmse(e, f) -> dict:
        return {
            'rmse_e_mev_atom': round(1000 * float(np.sqrt(np.mean((e - reference_e) ** 2))), 1),
            'rmse_f_ev_a': round(
                float(np.sqrt(np.mean(np.concatenate([(a - b).ravel() for a, b in zip(f, reference_f)]) ** 2))), 3
            ),
        }

    mean_e = np.mean(energies, axis=0)
    mean_f = [np.mean([member[index] for member in forces], axis=0) for index in range(len(frames))]
    return {
        'members': [rmse(e, f) for e, f in zip(energies, forces)],
        'committee_mean': rmse(mean_e, mean_f),
        'model_sha256': [hashlib.sha256(path.read_bytes()).hexdigest()[:12] for path in paths],
    }


def compare_committees(
    old: pathlib.Path, new: pathlib.Path, labels: pathlib.Path, before_ids: int, new_ids: list[int] | None = None
) -> dict:
    """Old and new committee on the same test frames of ``labels``: those both were tested on (frame id below
    ``before_ids``, the set the old committee was trained with), that set without its outliers (forces above 10 eV/Å:
    frame 11, a sheared Si8 no member fits), and the test frames added since (which neither trained on). With
    ``new_ids`` (frames labelled after the old committee was trained, whatever their ids: round 2's were labelled in
    two goes) the added frames are those, and the shared ones every other test frame."""
    from ase.io import read

    test = [atoms for atoms in read(labels, index=':', format='extxyz') if atoms.info['split'] == 'test']

    def added_since(atoms) -> bool:
        frame_id = int(atoms.info['frame_id'])
        return frame_id in new_ids if new_ids is not None else frame_id >= before_ids

    shared = [atoms for atoms in test if not added_since(atoms)]
    calm = [atoms for atoms in shared if np.abs(atoms.get_forces()).max() <= 10.0]
    added = [atoms for atoms in test if added_since(atoms)]
    sets = {'shared': shared, 'shared_without_outliers': calm, 'added': added}
    result = {'old': str(old), 'new': str(new), 'before_ids': before_ids, 'new_ids': new_ids, 'sets': {}}
    for name, frames in sets.items():
        if not frames:
            continue
        result['sets'][name] = {
            'frame_ids': [int(atoms.info['frame_id']) for atoms in frames],
            'old': committee_errors(old, frames),
            'new': committee_errors(new, frames),
        }
    return result


def _label_one(atoms) -> tuple[object, dict]:
    """Label one frame in a temporary folder; return the frame and the engine's results (runs in a worker)."""
    from aiida_sianode.engines.label import label

    start_cpu = time.process_time()
    with tempfile.TemporaryDirectory() as workdir:
        results = label(atoms, 'gpaw', GPAW_FAST, workdir)
    results['cpu_time_s'] = time.process_time() - start_cpu
    return atoms, results


def _write_label(atoms, results: dict, path: pathlib.Path) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    from ase.stress import full_3x3_to_voigt_6_stress

    atoms = atoms.copy()
    stress = results.get('stress')
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=results['energy'],
        free_energy=results['free_energy'],
        forces=np.array(results['forces']),
        stress=None if stress is None else full_3x3_to_voigt_6_stress(np.array(stress)),
    )
    atoms.info.update(
        wall_time_s=round(results['wall_time_s'], 2),
        cpu_time_s=round(results['cpu_time_s'], 2),
        scf_iterations=results['scf']['iterations'],
        kpoints_mesh=' '.join(str(value) for value in results['level_of_theory']['kpoints_mesh']),
    )
    write(path, atoms, format='extxyz', append=True)


def labelled_ids(path: pathlib.Path) -> set[int]:
    from ase.io import read

    if not path.is_file():
        return set()
    return {int(atoms.info['frame_id']) for atoms in read(path, index=':', format='extxyz')}


def label_stage(
    path: pathlib.Path,
    workers: int,
    limit: int | None,
    results: dict,
    add: list[pathlib.Path] = (),
    frames: list[tuple[str, object]] | None = None,
) -> None:
    """Label every frame (``frames``, by default those of :func:`build_frames`, then those of the ``add`` files) not
    yet in ``path``, ``workers`` at a time; record timings, failures and the added files in ``results``. Other
    systems' training sets (``train_carbon_gpaw.py``) pass their own ``frames``."""
    frames = build_frames() if frames is None else list(frames)
    extra = added_frames(list(add), len(frames))
    if extra:
        results['added_frames'] = [
            {
                'file': _repo_path(file),
                'sha256': hashlib.sha256(file.read_bytes()).hexdigest(),
                'frame_ids': [
                    atoms.info['frame_id'] for _, atoms in extra if atoms.info['source'].startswith(f'{file.name}:')
                ],
            }
            for file in add
        ]
    frames += extra
    done = labelled_ids(path)
    todo = [atoms for _, atoms in frames if atoms.info['frame_id'] not in done]
    # round robin over the config types (the first frame of every type, then the second...), so that a run stopped
    # early (or --limit) leaves a set that covers every type
    rank, seen = {}, {}
    for atoms in todo:
        kind = atoms.info['config_type']
        rank[atoms.info['frame_id']] = seen.get(kind, 0)
        seen[kind] = seen.get(kind, 0) + 1
    todo = sorted(todo, key=lambda atoms: (rank[atoms.info['frame_id']], atoms.info['frame_id']))[:limit]
    print(f'{len(frames)} frames, {len(done)} labelled already, {len(todo)} to label', flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = {str(item['frame_id']): item for item in results.get('failures', [])}
    start = time.perf_counter()
    with LoadSampler() as sampler, ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_label_one, atoms) for atoms in todo]
        for future in as_completed(futures):
            atoms, result = future.result()
            frame_id = atoms.info['frame_id']
            if result['status'] == 'ok':
                _write_label(atoms, result, path)
                failures.pop(str(frame_id), None)
            else:
                failures[str(frame_id)] = {
                    'frame_id': frame_id,
                    'config_type': atoms.info['config_type'],
                    'status': result['status'],
                    'error': result['error'],
                }
            print(
                f'frame {frame_id:3d} {atoms.info["config_type"]:24s} {len(atoms):3d} atoms {result["status"]} '
                f'{result["wall_time_s"]:.0f} s wall {result["cpu_time_s"]:.0f} s CPU',
                flush=True,
            )
    results['failures'] = sorted(failures.values(), key=lambda item: item['frame_id'])
    runs = results.setdefault('label_runs', [])
    runs.append(
        {
            'date': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
            'frames_labelled': len(todo),
            'workers': workers,
            'wall_time_s': time.perf_counter() - start,
            'load_average': sampler.summary() if sampler.samples else None,
        }
    )


def import_labels(path: pathlib.Path, script: str = 'benchmarks/train_lisi_gpaw.py') -> tuple[list, list]:
    """Store every labelled frame as a LabelData (GPAW PBE at :data:`GPAW_FAST`, made by ``script``); return the
    (train, test) lists split by ``info['split']``."""
    from ase.io import read

    from aiida_sianode.data.label import LabelData

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    level_of_theory = None
    train, test = [], []
    for index, atoms in enumerate(read(path, index=':', format='extxyz')):
        if level_of_theory is None:
            level_of_theory = {
                'code': 'gpaw',
                'method': 'PBE',
                'basis': 'plane-wave',
                'cutoff_ev': GPAW_FAST['cutoff_ev'],
                'kpoint_spacing': 1.0 / GPAW_FAST['kpoint_density'],
                'smearing': dict(GPAW_FAST['smearing']),
                'description': f'{script}, label protocol fast',
            }
        label = LabelData(
            atoms,
            level_of_theory=level_of_theory,
            source={'kind': 'file', 'filename': path.name, 'sha256': digest, 'frame': index},
            config_type=str(atoms.info['config_type']),
        ).store()
        (test if atoms.info['split'] == 'test' else train).append(label)
    return train, test


def train_stage(args, results: dict, system: SetDescription | None = None) -> None:
    """Import the labels of ``args.labels``, train a ``fast`` committee on them (``args``: ``profile``, ``override``,
    ``committee``, ``serial``, ``save_models``) and record it in ``results['training']``."""
    from aiida_sianode.cli.train import parse_overrides
    from aiida_sianode.data.dataset import build_dataset

    system = system or LISI
    code = setup_environment(args.profile)
    overrides = parse_overrides(args.override) or None
    train, test = import_labels(args.labels, system.script)
    dataset = build_dataset(train, valid_fraction=0.1, seed=0)
    test_dataset = build_dataset(test, valid_fraction=0.0, seed=0)
    print(f'dataset<{dataset.pk}> {dataset.split_counts}, test<{test_dataset.pk}> {test_dataset.n_frames} frames')
    with one_job_at_a_time(code.computer, args.serial):
        record = run_protocol(code, dataset, test_dataset, 'fast', args.committee, overrides, None)
    record['serial_members'] = args.serial
    record['labels_sha256'] = hashlib.sha256(args.labels.read_bytes()).hexdigest()
    record['machine'] = {'cpus': os.cpu_count(), 'processor': processor_name(), 'python': sys.version.split()[0]}
    record['split_counts'] = {'train_valid': dataset.split_counts, 'test': test_dataset.n_frames}
    if args.save_models is not None and record.get('metrics'):
        record['saved_models'] = str(args.save_models)
        save_models(record['workchain_pk'], args.save_models, record, system)
    results['training'] = record


def save_models(workchain_pk: int, target: pathlib.Path, record: dict, system: SetDescription | None = None) -> None:
    """Copy the committee's members to ``target/member_<i>.model`` and write ``target/README.md`` (what they are,
    the PotentialData PKs in the training profile, each file's seed, sha256 and test error)."""
    from aiida import orm

    system = system or LISI

    node = orm.load_node(workchain_pk)
    target.mkdir(parents=True, exist_ok=True)
    potentials = node.outputs.potentials
    members = (record.get('metrics') or {}).get('members', {})
    rows = []
    for index, key in enumerate(sorted(potentials)):
        potential = potentials[key]
        path = target / f'member_{index}.model'
        with potential.open(potential.filename, 'rb') as source:
            path.write_bytes(source.read())
        member = members.get(key, {})
        test = member.get('test', {})
        rows.append(
            f'| {path.name} | {potential.seed if potential.seed is not None else member.get("seed", index)} | '
            f'{hashlib.sha256(path.read_bytes()).hexdigest()} | {test.get("rmse_e_per_atom_mev", float("nan")):.1f} | '
            f'{test.get("rmse_f_mev_a", float("nan")) / 1000:.3f} | {potential.pk} |'
        )
    parameters = record['parameters']
    lines = [
        f'# A `fast` MACE committee of {len(rows)} on the GPAW PBE {system.name} set',
        '',
        f'Trained by `{system.script} --train` (TrainCommitteeWorkChain, `fast` protocol: '
        f'{parameters["num_channels"]} channels, max_L {parameters["max_L"]}, correlation {parameters["correlation"]}, '
        f'r_max {parameters["r_max"]} Å, {parameters["default_dtype"]}, {parameters["max_num_epochs"]} epochs at most, '
        f'bootstrap {parameters["bootstrap"]}'
        + (f'; overrides {record["overrides"]}' if record.get('overrides') else '')
        + f') on `{system.labels}` (GPAW PBE, the `fast` label protocol; sha256 '
        f'{record.get("labels_sha256", "?")[:12]}...). Errors and what the set holds: `{system.report}`. A crude '
        f'committee (a few dozen frames at most): for tests and first looks at {system.name} properties, not for '
        'production.',
        '',
        '| file | seed | sha256 | test E RMSE (meV/atom) | test F RMSE (eV/Å) | PotentialData PK (training profile) |',
        '|---|---|---|---|---|---|',
        *rows,
        '',
        f'Training set UUID in the training profile: `{node.inputs.dataset.uuid}`.',
        '',
    ]
    (target / 'README.md').write_text('\n'.join(lines))


def _frame_table(
    path: pathlib.Path, merge_prefixes: tuple[str, ...] = ('LixSi_amorphous',), energies: bool = False
) -> list[str]:
    """A Markdown table of the labelled frames per config type (types starting with one of ``merge_prefixes`` count
    as one); with ``energies`` a column of each type's range of PBE energy per atom."""
    from collections import defaultdict

    from ase.io import read

    if not path.is_file():
        return ['(no labels yet)']
    rows = defaultdict(lambda: {'n': 0, 'atoms': set(), 'wall': 0.0, 'cpu': 0.0, 'test': 0, 'e': []})
    for atoms in read(path, index=':', format='extxyz'):
        kind = str(atoms.info['config_type'])
        kind = next((prefix for prefix in merge_prefixes if kind.startswith(prefix)), kind)
        row = rows[kind]
        row['n'] += 1
        row['atoms'].add(len(atoms))
        row['wall'] += float(atoms.info['wall_time_s'])
        row['cpu'] += float(atoms.info['cpu_time_s'])
        row['test'] += atoms.info['split'] == 'test'
        row['e'].append(atoms.get_potential_energy() / len(atoms))
    energy_head = ' PBE energy (eV/atom) |' if energies else ''
    lines = [
        f'| config type | frames (test) | atoms |{energy_head} CPU time (s) | wall time (s) |',
        '|---|---|---|' + ('---|' if energies else '') + '---|---|',
    ]
    total = {'n': 0, 'cpu': 0.0, 'wall': 0.0, 'test': 0}
    for kind, row in rows.items():
        sizes = sorted(row['atoms'])
        size = str(sizes[0]) if len(sizes) == 1 else f'{sizes[0]}-{sizes[-1]}'
        energy = f' {min(row["e"]):.2f} to {max(row["e"]):.2f} |' if energies else ''
        lines.append(f'| {kind} | {row["n"]} ({row["test"]}) | {size} |{energy} {row["cpu"]:.0f} | {row["wall"]:.0f} |')
        for key in total:
            total[key] += row[key]
    lines.append(
        f'| **all** | {total["n"]} ({total["test"]}) | |{" |" if energies else ""} {total["cpu"]:.0f} '
        f'| {total["wall"]:.0f} |'
    )
    return lines


def set_run_lines(results: dict, workers: bool = False, added: bool = True) -> list[str]:
    """Report lines of a set's labelling: failed labels, label runs (with ``workers``, how many ran at once; else
    "one at a time", as the carbon and Li2CO3 scripts label), added frame files (with ``added``), notes."""
    failures = results.get('failures') or []
    lines = [f'Failed labels: {len(failures)}.']
    for item in failures:
        lines.append(f'- frame {item["frame_id"]} ({item["config_type"]}): {item["status"]}: {item["error"]}')
    for run in results.get('label_runs', []):
        load = run.get('load_average') or {}
        pace = f'{run["workers"]} workers' if workers else 'one at a time'
        lines.append(
            f'- label run {run["date"]}: {run["frames_labelled"]} frames, {pace}, '
            f'{run["wall_time_s"] / 60:.1f} min wall, load {load.get("mean", float("nan")):.1f} mean / '
            f'{load.get("max", float("nan")):.1f} max (2 cores, shared)'
        )
    for item in results.get('added_frames', []) if added else []:
        lines.append(
            f'- added frames: `{item["file"]}` (sha256 {item["sha256"][:12]}...) as frame ids '
            f'{item["frame_ids"][0]}-{item["frame_ids"][-1]}, test rule as above'
        )
    lines += [f'- {note}' for note in results.get('notes', [])]
    return lines


def set_main(argv, description: str, label, report, system: SetDescription, results_path, labels_path) -> int:
    """The command line of a training-set script built on these stages: ``--label`` (``label(path, limit, results,
    add_frames)``), ``--train`` (:func:`train_stage` for ``system``), ``--report-only``; the report is written by
    ``report(results, labels_path)`` after every run."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--label', action='store_true', help='Label the frames not yet labelled.')
    parser.add_argument('--train', action='store_true', help='Train the committee on the labels.')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--limit', type=int, default=None, help='Label at most this many frames in this run.')
    parser.add_argument('--labels', type=pathlib.Path, default=labels_path)
    parser.add_argument('--committee', type=int, default=3)
    parser.add_argument('--profile', default=None)
    parser.add_argument('--override', action='append', default=[], help='KEY=VALUE as for `aiida-sianode train`.')
    parser.add_argument('--save-models', type=pathlib.Path, default=None)
    parser.add_argument('--serial', action='store_true', help='Train the members one after the other.')
    parser.add_argument('--results', type=pathlib.Path, default=results_path)
    parser.add_argument(
        '--add-frames',
        type=pathlib.Path,
        action='append',
        default=[],
        help='With --label: also label the frames of this extxyz file (ids after the built frames, in order given).',
    )
    args = parser.parse_args(argv)
    if not (args.label or args.train or args.report_only):
        parser.error('give --label, --train or --report-only')
    if args.add_frames and not args.label:
        parser.error('--add-frames goes with --label')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    if args.label:
        label(args.labels, args.limit, results, args.add_frames)
        args.results.write_text(json.dumps(results, indent=2))
    if args.train:
        train_stage(args, results, system)
        args.results.write_text(json.dumps(results, indent=2))
    report(results, args.labels)
    return 0


def committee_section(record: dict | None) -> list[str]:
    """The report's section on the trained committee (``results['training']``): settings, test errors per member
    and of the committee mean, disagreement, wall time."""
    lines = ['', '## Committee', '']
    if not record:
        lines.append('(not trained yet)')
    elif not record.get('metrics'):
        lines.append(f'Training failed: exit status {record["exit_status"]}: {record["exit_message"]}')
    else:
        metrics = record['metrics']
        parameters = record['parameters']
        test = metrics['mean_std'].get('test', {})
        energy, forces = test.get('rmse_e_per_atom_mev', {}), test.get('rmse_f_mev_a', {})
        stress = test.get('rmse_stress_mev_a3', {})
        committee = metrics.get('committee_prediction', {}).get('test', {})
        load = record['load_average']
        lines += [
            f'`fast` protocol: {parameters["num_channels"]} channels, max_L {parameters["max_L"]}, correlation '
            f'{parameters["correlation"]}, r_max {parameters["r_max"]} Å, {parameters["max_num_epochs"]} epochs at '
            f'most, batch {parameters["batch_size"]}, stress weight {parameters["stress_weight"]}, bootstrap '
            f'{parameters["bootstrap"]}'
            + (f'; overrides {record["overrides"]}' if record.get('overrides') else '')
            + f'. Split: {record["split_counts"]}.'
            + (f' Labels sha256 {record["labels_sha256"][:12]}...' if record.get('labels_sha256') else ''),
            '',
            '| | E RMSE (meV/atom) | F RMSE (eV/Å) | stress RMSE (meV/Å^3) |',
            '|---|---|---|---|',
        ]
        for label, member in metrics['members'].items():
            member_test = member.get('test', {})
            lines.append(
                f'| {label} (seed {member["seed"]}), test | {member_test.get("rmse_e_per_atom_mev", float("nan")):.1f} '
                f'| {member_test.get("rmse_f_mev_a", float("nan")) / 1000:.3f} | '
                + (
                    f'{member_test["rmse_stress_mev_a3"]:.2f}'
                    if member_test.get('rmse_stress_mev_a3') is not None
                    else '–'
                )
                + ' |'
            )
        lines += [
            f'| members, test (mean ± std) | {energy.get("mean", float("nan")):.1f} ± '
            f'{energy.get("std", float("nan")):.1f} | {(forces.get("mean") or 0) / 1000:.3f} ± '
            f'{(forces.get("std") or 0) / 1000:.3f} | '
            + (f'{stress["mean"]:.2f} ± {stress["std"]:.2f}' if stress else '–')
            + ' |',
            f'| committee mean, test | {committee.get("rmse_e_per_atom_mev", float("nan")):.1f} | '
            f'{committee.get("rmse_f_mev_a", 0) / 1000:.3f} | '
            + (f'{committee["rmse_stress_mev_a3"]:.2f}' if 'rmse_stress_mev_a3' in committee else '–')
            + ' |',
            '',
        ]
        for label, member in metrics['members'].items():
            lines.append(
                f'- {label}: {member["epochs_run"]} epochs (best {member["best_epoch"]}), '
                f'{member["training_wall_time_s"]:.0f} s'
            )
        disagreement = metrics.get('test_disagreement')
        if disagreement:
            lines.append(
                f'- member disagreement on test: mean max force deviation '
                f'{disagreement["mean_max_force_deviation_ev_a"]:.3g} eV/Å, energy std '
                f'{disagreement["mean_energy_std_mev_per_atom"]:.3g} meV/atom'
            )
        lines.append(
            f'- committee wall time {record["wall_time_s"] / 60:.1f} min ({record["date"]}), load '
            f'{load["mean"]:.1f} mean / {load["max"]:.1f} max on {record["machine"]["cpus"]} cores '
            f'({record["machine"]["processor"]}); models saved to `{record.get("saved_models", "-")}`'
        )
    return lines


def _training_frames(record: dict) -> int:
    """Labelled frames behind a training record: its train, valid and test frames."""
    counts = record['split_counts']
    return sum(counts['train_valid'].values()) + counts['test']


def write_report(results: dict, path: pathlib.Path = REPORT, labels: pathlib.Path = LABELS) -> None:
    lines = [
        '# A GPAW PBE Li-Si training set and a `fast` MACE committee on it',
        '',
        'Generated by `benchmarks/train_lisi_gpaw.py` from `benchmarks/train_lisi_gpaw.json` and the labels in',
        f'`{labels.relative_to(REPO)}`.',
        '',
        '**Labels.** GPAW 26.7.0 plane waves, PBE, the `fast` label protocol (300 eV, k-point density 1.5/Å',
        'Γ-centred, Marzari-Vanderbilt 0.1 eV, stress on), run by the project label engine',
        '(`aiida_sianode.engines.label.label`) in-process, one thread per frame. `build_frames` defines 55 frames (the',
        'table below lists those labelled so far): bcc Li (2 and 16 atoms,',
        '±4 % in lattice constant, rattled), diamond Si (8 atoms, ±3 %, sheared, rattled up to 0.2 Å), one Li at the',
        'tetrahedral site, the hexagonal site and half way in Si8 (PBE a = 5.47 Å), LiSi (16-atom primitive cell),',
        'Li13Si4 (34) and Li15Si4 (38-atom primitive cell) at their DFT or 123 K cells, ±3 % and rattled; and',
        'amorphous Li_xSi cells from the `lixsi` builder (random a-Si host, Li at the largest voids, 2.2 Å apart;',
        f'x = {", ".join(f"{x:g}" for x in AMORPHOUS_X)}; 12-24 atoms), two starts per x, at the builder volume and',
        '±5 %, rattled 0.05-0.15 Å. Unrelaxed builder starts, not MD snapshots: they sample the composition and',
        'density range, not the thermal disorder of an annealed melt.',
        f'One frame in {TEST_EVERY} (frame_id % {TEST_EVERY} = {TEST_EVERY - 1}) is the test set.',
        '',
        *_frame_table(labels),
        '',
    ]
    lines += set_run_lines(results, workers=True, added=False)
    collect = results.get('collect')
    if collect:
        rule = collect['rule']
        lines += [
            '',
            '### Active learning, round 1 (`--collect`, then `--label --add-frames`)',
            '',
            f'`--collect {collect["file"]}` ({collect["date"]}, {collect["wall_time_s"]:.0f} s wall, '
            f'{collect["cpu_time_s"]:.0f} s CPU): each member of `{collect["models"]}` redid the `fast` lithiation '
            f'steps on {", ".join(sorted({row["structure"] for row in collect["groups"]}))} (anneal 0.5 ps at 800 '
            f'K for the amorphous cells, then FIRE + FrechetCellFilter), a frame every {COLLECT_ANNEAL_EVERY} MD / '
            f'{COLLECT_RELAX_EVERY} FIRE steps: {collect["candidates"]} candidates, scored by the whole committee. '
            f'Dropped: {collect["dropped_short_distance"]} with two atoms closer than {rule["min_distance_a"]} Å, '
            f'{collect["dropped_size"]} over {rule["max_atoms"]} atoms. Kept {collect["chosen"]}: first the key frames '
            f'(each relaxation end point, or its last frame before a collapse, and each annealed amorphous cell) whose '
            f'force deviation is above {rule["trust_ev_a"]} eV/Å, then the others, by falling force deviation, at most '
            f'{rule["per_group"]} per (member, structure), {rule["min_separation_steps"]} steps apart at least.',
            '',
            '| driving member | structure | candidates | end point: member energies (eV/atom) | end point: shortest '
            'distance (Å) | FIRE steps | largest force deviation, all candidates (eV/Å) |',
            '|---|---|---|---|---|---|---|',
            *(
                f'| {row["member"]} | {row["structure"]} | {row["frames"]} | {row["end_member_energies_ev_atom"]} | '
                f'{row["end_shortest_distance_a"]} | {row["end_relax_steps"]} | {row["max_force_deviation_ev_a"]} |'
                for row in collect['groups']
            ),
            '',
        ]
    collect_md = results.get('collect_md')
    if collect_md:
        rule = collect_md['rule']
        md = rule['md']
        cells = ', '.join(f'x = {cell["x"]:g} ({cell["n_si"]} Si)' for cell in rule['cells'])
        lines += [
            '',
            '### Active learning, round 2: production MD (`--collect-md`, then `--label --add-frames`)',
            '',
            f'`--collect-md {collect_md["file"]}` ({collect_md["date"]}; the MD runs '
            f'{sum(run["wall_time_s"] for run in collect_md["runs"]):.0f} s wall, '
            f'{sum(run["cpu_time_s"] for run in collect_md["runs"]):.0f} s CPU in all): production MD '
            "(`aiida_sianode.properties.md.run_md`, the plain module) of the diffusion benchmark's amorphous cells "
            f'({cells}; `lixsi`, random host, seed 0, '
            f'unrelaxed) at {", ".join(f"{t:g}" for t in rule["temperatures_k"])} K, each member of '
            f'`{collect_md["models"]}` driving in turn ({md["ensemble"]}, {md["timestep_fs"]:g} fs, '
            f'{rule["length_ps"]:g} ps, runaway stop at {md["max_temperature_factor"]:g}x T), the other two '
            f'scoring a frame every {md["sample_interval"]} steps: {collect_md["candidates"]} scored frames. '
            f'Dropped: {collect_md["dropped"]["early"]} before step {rule["min_step"]} (every member starts from the '
            f'same cell and velocities), {collect_md["dropped"]["short_distance"]} with two atoms closer than '
            f'{rule["min_distance_a"]} Å, {collect_md["dropped"]["size"]} over {rule["max_atoms"]} atoms. Kept, by '
            'falling force '
            f'deviation, up to {rule["n_frames"]}: at most one frame per run (x, T, member), none within '
            f'{rule["min_rmsd_a"]} Å RMSD of one kept already ({collect_md["dropped"]["near_duplicate"]} such '
            f'dropped): {len(collect_md["chosen"])}; then '
            + ', '.join(
                f'{item["structure"]} ({item["natoms"]} atoms) scaled {item["scale"]:g} and rattled '
                f'{item["rattle_a"]:g} Å'
                for item in collect_md['crystals']
            )
            + ' (the DFT cell of the `lixsi-crystal` builder; Li12Si7, 152 atoms, is too large).',
            '',
            '| x | T (K) | driving member | stop | steps | samples above 0.25 eV/Å | mean force deviation (eV/Å) | '
            'frame kept (step, deviation eV/Å) |',
            '|---|---|---|---|---|---|---|---|',
        ]
        kept = {(item['x'], item['temperature_k'], item['member']): item for item in collect_md['chosen']}
        for run in collect_md['runs']:
            item = kept.get((run['x'], run['temperature_k'], run['member']))
            lines.append(
                f'| {run["x"]:g} | {run["temperature_k"]:g} | {run["member"]} | {run["stop_reason"]} | '
                f'{run["steps"]} | {100 * (run["fraction_above_upper"] or 0):.0f} % of {run["committee_samples"]} | '
                f'{run["max_force_deviation_mean_ev_a"]:.2f} | '
                + (f'{item["step"]}, {item["max_force_deviation_ev_a"]:.2f}' if item else '–')
                + ' |'
            )
        lines.append('')
    for item in results.get('added_frames', []):
        lines.append(
            f'- added frames: `{item["file"]}` (sha256 {item["sha256"][:12]}...) as frame ids '
            f'{item["frame_ids"][0]}-{item["frame_ids"][-1]}, test rule as above'
        )
    lines += committee_section(results.get('training'))
    lines.append('')
    for earlier in reversed(results.get('earlier_trainings', [])):
        section = committee_section(earlier)
        section[1] = f'### An earlier committee, on {_training_frames(earlier)} labelled frames'
        lines += [*section, '']
    for comparison in [results.get('comparison'), *reversed(results.get('earlier_comparisons', []))]:
        if not comparison:
            continue
        names = {
            'shared': 'the test frames of the old set',
            'shared_without_outliers': 'the same without frames over 10 eV/Å',
            'added': 'the test frames added since (neither trained on them)',
        }
        lines += [
            '',
            f'### Old against new committee on the same test frames (`--compare-old {comparison["old"]}`, '
            + (
                f'`--new-ids {",".join(map(str, comparison["new_ids"]))}`: the frames labelled after the old committee'
                if comparison.get('new_ids')
                else f'`--before-ids {comparison["before_ids"]}`: the old committee trained on the frames below that id'
            )
            + '; float64)',
            '',
            '| test frames | ids | old members, E (meV/atom) | new members, E | old members, F (eV/Å) | '
            'new members, F | committee mean E old / new | committee mean F old / new |',
            '|---|---|---|---|---|---|---|---|',
        ]
        for name, item in comparison['sets'].items():
            old, new = item['old'], item['new']

            def listed(errors: dict, key: str, digits: int) -> str:
                return ', '.join(f'{member[key]:.{digits}f}' for member in errors['members'])

            lines.append(
                f'| {names[name]} | {", ".join(map(str, item["frame_ids"]))} | '
                f'{listed(old, "rmse_e_mev_atom", 1)} | {listed(new, "rmse_e_mev_atom", 1)} | '
                f'{listed(old, "rmse_f_ev_a", 3)} | {listed(new, "rmse_f_ev_a", 3)} | '
                f'{old["committee_mean"]["rmse_e_mev_atom"]:.1f} / {new["committee_mean"]["rmse_e_mev_atom"]:.1f} | '
                f'{old["committee_mean"]["rmse_f_ev_a"]:.3f} / {new["committee_mean"]["rmse_f_ev_a"]:.3f} |'
            )
        lines.append('')
    path.write_text('\n'.join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--label', action='store_true', help='Label the frames not yet labelled.')
    parser.add_argument('--train', action='store_true', help='Train the committee on the labels.')
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--workers', type=int, default=1, help='Labels run at once (one thread each).')
    parser.add_argument('--limit', type=int, default=None, help='Label at most this many frames in this run.')
    parser.add_argument('--labels', type=pathlib.Path, default=LABELS)
    parser.add_argument('--committee', type=int, default=3)
    parser.add_argument('--profile', default=None)
    parser.add_argument('--override', action='append', default=[], help='KEY=VALUE as for `aiida-sianode train`.')
    parser.add_argument('--save-models', type=pathlib.Path, default=None)
    parser.add_argument(
        '--serial', action='store_true', help='Train the members one after the other (one job at a time).'
    )
    parser.add_argument('--results', type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        '--add-frames',
        type=pathlib.Path,
        action='append',
        default=[],
        help='With --label: also label the frames of this extxyz file (ids after the built frames, in order given).',
    )
    parser.add_argument(
        '--collect',
        type=pathlib.Path,
        default=None,
        help='Write the frames where the committee in --models disagrees most to this extxyz file (collect_frames).',
    )
    parser.add_argument('--models', type=pathlib.Path, default=REPO / 'fixtures' / 'models' / 'lisi_fast')
    parser.add_argument(
        '--collect-md',
        type=pathlib.Path,
        default=None,
        help='Write the production-MD frames where the committee in --models disagrees most, and the round-2 '
        'crystal frames, to this extxyz file (collect_md_frames).',
    )
    parser.add_argument(
        '--compare-old',
        type=pathlib.Path,
        default=None,
        help='Score the committee in this folder and the one in --models on the same test frames (compare_committees).',
    )
    parser.add_argument(
        '--before-ids', type=int, default=63, help='With --compare-old: frames the old committee was trained with.'
    )
    parser.add_argument(
        '--new-ids',
        default=None,
        help='With --compare-old: the frame ids labelled since the old committee, comma separated (else those from '
        '--before-ids on).',
    )
    parser.add_argument('--md-workdir', type=pathlib.Path, default=None, help='With --collect-md: keep the MD here.')
    parser.add_argument('--n-frames', type=int, default=None, help='With --collect / --collect-md: frames to keep.')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f'--workers must be at least 1, got {args.workers}')
    if not (args.label or args.train or args.report_only or args.collect or args.collect_md or args.compare_old):
        parser.error('give --collect, --collect-md, --label, --train or --report-only')
    if args.add_frames and not args.label:
        parser.error('--add-frames goes with --label')
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    results = json.loads(args.results.read_text()) if args.results.is_file() else {}
    if args.collect:
        results['collect'] = collect_frames(args.models, args.collect, n_frames=args.n_frames or 8)
        args.results.write_text(json.dumps(results, indent=2))
    if args.collect_md:
        results['collect_md'] = collect_md_frames(
            args.models, args.collect_md, n_frames=args.n_frames or 15, workdir=args.md_workdir
        )
        args.results.write_text(json.dumps(results, indent=2))
    if args.label:
        label_stage(args.labels, args.workers, args.limit, results, args.add_frames)
        args.results.write_text(json.dumps(results, indent=2))
    if args.train:
        if results.get('training', {}).get('metrics'):
            results.setdefault('earlier_trainings', []).append(results['training'])
        train_stage(args, results)
        args.results.write_text(json.dumps(results, indent=2))
    if args.compare_old:
        if results.get('comparison'):
            results.setdefault('earlier_comparisons', []).append(results['comparison'])
        new_ids = [int(item) for item in args.new_ids.split(',')] if args.new_ids else None
        results['comparison'] = compare_committees(args.compare_old, args.models, args.labels, args.before_ids, new_ids)
        args.results.write_text(json.dumps(results, indent=2))
    write_report(results, REPORT, args.labels)
    return 0


if __name__ == '__main__':
    sys.exit(main())
