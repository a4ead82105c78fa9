"""``PotentialData``: a trained MACE model file, and ``Committee``: several of them predicting together.

The file is what ``mace_run_train`` writes as ``<name>.model``: ``torch.save`` of the whole model object. Reading it
unpickles Python objects, so only load files you trust (the ones your own training calculations produced).

Units: energies eV, forces eV/Å, stresses eV/Å^3 (Voigt-6, ASE sign convention) for predictions; errors are reported
as meV/atom (energy per atom), meV/Å (force components) and meV/Å^3 (stress components).
"""

from __future__ import annotations

import contextlib
import math
import pathlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence

import numpy as np
from aiida import orm

from aiida_sianode.common.hashing import sha256_file

__all__ = ('Committee', 'PotentialData', 'error_metrics', 'read_model_metadata')

METRIC_KEYS = (
    'rmse_e_per_atom_mev',
    'mae_e_per_atom_mev',
    'rmse_f_mev_a',
    'mae_f_mev_a',
    'rmse_stress_mev_a3',
    'mae_stress_mev_a3',
)


def _load_model(path):
    """Unpickle a mace model file on the CPU (``mace`` is imported first so its classes resolve)."""
    import mace  # noqa: F401  registers torch's permission to unpickle whole models
    import torch

    return torch.load(str(path), weights_only=False, map_location='cpu')


def _architecture(model) -> dict:
    """Return the hyper-parameters of a mace model, read from its modules (any MACE class, not only ScaleShiftMACE).

    ``hidden_irreps`` are the irreps the first product block outputs (what ``--hidden_irreps``, or
    ``--num_channels`` with ``--max_L``, set; a one-interaction model keeps only the scalars), ``max_L`` their
    largest ``l``, ``num_channels`` the multiplicity of their scalars, ``max_ell`` the order of the spherical
    harmonics, ``correlation`` the body order of the symmetric contraction. A field a model class lacks is left out.
    """
    from e3nn import o3

    architecture: dict = {'class': type(model).__name__, 'num_interactions': int(model.num_interactions)}
    readers = {
        'hidden_irreps': lambda: str(o3.Irreps(str(model.products[0].linear.irreps_out))),
        'max_ell': lambda: int(model.spherical_harmonics._lmax),
        'correlation': lambda: [
            int(product.symmetric_contractions.contractions[0].correlation) for product in model.products
        ],
        'interaction': lambda: type(model.interactions[-1]).__name__,
        'MLP_irreps': lambda: str(model.readouts[-1].hidden_irreps),
        'num_bessel': lambda: int(model.radial_embedding.bessel_fn.bessel_weights.shape[0]),
        'num_polynomial_cutoff': lambda: int(model.radial_embedding.cutoff_fn.p),
        'avg_num_neighbors': lambda: float(model.interactions[0].avg_num_neighbors),
        'heads': lambda: [str(head) for head in getattr(model, 'heads', None) or ['Default']],
    }
    for key, read in readers.items():
        try:
            architecture[key] = read()
        except (AttributeError, IndexError, TypeError, ValueError):
            continue
    correlations = architecture.get('correlation')
    if isinstance(correlations, list) and len(set(correlations)) == 1:
        architecture['correlation'] = correlations[0]
    if 'hidden_irreps' in architecture:
        hidden = o3.Irreps(architecture['hidden_irreps'])
        architecture['max_L'] = int(hidden.lmax)
        architecture['num_channels'] = int(hidden.count(o3.Irrep(0, 1)))
    return architecture


def read_model_metadata(path) -> dict:
    """Read a mace ``.model`` file and return the attributes a :class:`PotentialData` records about it.

    Keys: ``architecture`` (``class``, ``num_interactions``, ``hidden_irreps``, ``max_L``, ``correlation``,
    ``num_channels``, ``max_ell``, ``interaction``, ``MLP_irreps``, ``radial_MLP``, ``num_bessel``,
    ``num_polynomial_cutoff``, ``avg_num_neighbors``, ``heads``), ``elements``, ``r_max`` (Å), ``dtype``,
    ``num_parameters``, ``mace_version``, ``sha256``, ``atomic_energies`` (E0s in eV by element, when the model has
    them).
    """
    import mace
    from ase.data import chemical_symbols

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'model file {path} does not exist')
    try:
        model = _load_model(path)
    except Exception as exception:
        raise ValueError(f'{path} is not a readable mace model file: {exception}') from exception
    if not hasattr(model, 'atomic_numbers') or not hasattr(model, 'r_max'):
        raise ValueError(f'{path} holds a {type(model).__name__}, not a mace model (no atomic_numbers / r_max)')

    numbers = [int(z) for z in model.atomic_numbers]
    first = next(model.parameters())
    architecture = _architecture(model)
    atomic_energies = None
    try:
        energies = np.asarray(model.atomic_energies_fn.atomic_energies.detach().cpu(), dtype=float)
        if energies.ndim == 2:  # one row per head
            energies = energies[0]
        if energies.shape == (len(numbers),):
            atomic_energies = {chemical_symbols[z]: float(e) for z, e in zip(numbers, energies)}
    except AttributeError:
        pass
    return {
        'architecture': architecture,
        'elements': sorted({chemical_symbols[z] for z in numbers}, key=lambda s: chemical_symbols.index(s)),
        'r_max': float(model.r_max),
        'dtype': str(first.dtype).replace('torch.', ''),
        'num_parameters': int(sum(p.numel() for p in model.parameters())),
        'mace_version': str(mace.__version__),
        'sha256': sha256_file(path),
        'atomic_energies': atomic_energies,
    }


def _validate_metrics(metrics) -> dict:
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise TypeError(f'metrics must be a dict split -> {{metric: value}}, got {type(metrics).__name__}')
    clean = {}
    for split, values in metrics.items():
        if not isinstance(values, dict):
            raise TypeError(f'metrics[{split!r}] must be a dict of numbers, got {type(values).__name__}')
        clean[str(split)] = {}
        for key, value in values.items():
            if value is None:
                clean[str(split)][str(key)] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not math.isfinite(value):
                raise ValueError(f'metrics[{split!r}][{key!r}] must be a finite number, got {value!r}')
            clean[str(split)][str(key)] = int(value) if isinstance(value, int | np.integer) else float(value)
    return clean


class PotentialData(orm.SinglefileData):
    """A MACE model file with what it is: architecture, elements, cutoff, checksum, training set and errors.

    Attributes: ``architecture``, ``elements``, ``r_max`` (Å), ``sha256`` (of the file), ``dtype``,
    ``mace_version`` (of the mace that read the file), ``training_set_uuid``, ``seed``, ``num_parameters``,
    ``metrics`` (split -> {``rmse_e_per_atom_mev``, ``mae_e_per_atom_mev``, ``rmse_f_mev_a``, ``mae_f_mev_a``,
    ``rmse_stress_mev_a3``, ...}) and ``atomic_energies`` (E0s, eV).
    """

    @classmethod
    def from_model_file(
        cls,
        path,
        *,
        training_set_uuid: str | None = None,
        metrics: dict | None = None,
        seed: int | None = None,
        filename: str | None = None,
    ) -> PotentialData:
        """Return an unstored PotentialData of the mace model file at ``path``, its attributes read from the model.

        :param training_set_uuid: UUID of the DatasetData it was trained on.
        :param metrics: errors per split, ``{'train': {'rmse_e_per_atom_mev': ...}, 'valid': {...}}``.
        :param seed: the training seed.
        :param filename: name inside the node (default: the file's name).
        """
        path = pathlib.Path(path)
        metadata = read_model_metadata(path)
        clean_metrics = _validate_metrics(metrics)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise TypeError(f'seed must be an integer, got {seed!r}')
        if training_set_uuid is not None and not isinstance(training_set_uuid, str):
            raise TypeError(f'training_set_uuid must be a UUID string, got {training_set_uuid!r}')
        node = cls(file=str(path.resolve()), filename=filename or path.name)
        node.base.attributes.set_many(
            {
                **metadata,
                'training_set_uuid': training_set_uuid,
                'seed': int(seed) if seed is not None else None,
                'metrics': clean_metrics,
            }
        )
        return node

    @property
    def architecture(self) -> dict:
        """Model class and its hyper-parameters (``num_interactions``, ``hidden_irreps``, ``max_L``...)."""
        return self.base.attributes.get('architecture')

    @property
    def elements(self) -> list[str]:
        """Chemical symbols the model knows, in atomic-number order."""
        return self.base.attributes.get('elements')

    @property
    def r_max(self) -> float:
        """Cutoff radius in Å."""
        return self.base.attributes.get('r_max')

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file."""
        return self.base.attributes.get('sha256')

    @property
    def dtype(self) -> str:
        """Floating-point type of the weights (``float32`` or ``float64``)."""
        return self.base.attributes.get('dtype')

    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers in the model."""
        return self.base.attributes.get('num_parameters')

    @property
    def training_set_uuid(self) -> str | None:
        """UUID of the DatasetData the model was trained on."""
        return self.base.attributes.get('training_set_uuid', None)

    @property
    def seed(self) -> int | None:
        """The training seed."""
        return self.base.attributes.get('seed', None)

    @property
    def metrics(self) -> dict:
        """Errors per split (meV/atom, meV/Å, meV/Å^3)."""
        return self.base.attributes.get('metrics', {}) or {}

    def set_metrics(self, metrics: dict) -> None:
        """Set the ``metrics`` attribute (only before the node is stored)."""
        self.base.attributes.set('metrics', _validate_metrics(metrics))

    @contextlib.contextmanager
    def as_model_file(self) -> Iterator[pathlib.Path]:
        """Context manager giving a temporary path outside the repository holding a copy of the model file."""
        with tempfile.TemporaryDirectory(prefix='sianode-potential-') as directory:
            path = pathlib.Path(directory) / (self.filename or 'potential.model')
            with self.open(mode='rb') as source, path.open('wb') as target:
                shutil.copyfileobj(source, target)
            yield path

    def copy_model_file(self, path) -> pathlib.Path:
        """Write the model file to ``path`` and return it."""
        path = pathlib.Path(path)
        with self.open(mode='rb') as source, path.open('wb') as target:
            shutil.copyfileobj(source, target)
        return path

    def get_model(self):
        """Return the unpickled torch model (on the CPU)."""
        with self.as_model_file() as path:
            return _load_model(path)

    def get_calculator(self, device: str = 'cpu', default_dtype: str | None = None):
        """Return a mace ``MACECalculator`` for this model.

        :param device: torch device (``cpu``, ``cuda``).
        :param default_dtype: ``float32`` or ``float64``; ``None`` keeps the dtype of the stored weights.
        """
        import mace  # noqa: F401
        from mace.calculators import MACECalculator

        with self.as_model_file() as path:
            return MACECalculator(model_paths=[str(path)], device=device, default_dtype=default_dtype or self.dtype)

    def __str__(self) -> str:
        architecture = self.architecture or {}
        return (
            f'{architecture.get("class", "MACE")} {"-".join(self.elements or [])} r_max={self.r_max} Å '
            f'{self.num_parameters} parameters'
        )


def error_metrics(reference: dict, predicted: dict) -> dict:
    """Return RMSE and MAE from reference and predicted arrays (see :meth:`Committee.predict_frames`).

    ``reference``/``predicted`` hold ``e_per_atom`` (eV/atom), ``forces`` (flat components, eV/Å) and ``stress``
    (flat Voigt components, eV/Å^3); the result is in meV/atom, meV/Å and meV/Å^3 (``None`` without data).
    """

    def pair(key):
        ref, pred = np.asarray(reference[key], dtype=float), np.asarray(predicted[key], dtype=float)
        if ref.size == 0:
            return None, None
        error = (pred - ref) * 1000.0
        return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))

    rmse_e, mae_e = pair('e_per_atom')
    rmse_f, mae_f = pair('forces')
    rmse_s, mae_s = pair('stress')
    return {
        'rmse_e_per_atom_mev': rmse_e,
        'mae_e_per_atom_mev': mae_e,
        'rmse_f_mev_a': rmse_f,
        'mae_f_mev_a': mae_f,
        'rmse_stress_mev_a3': rmse_s,
        'mae_stress_mev_a3': mae_s,
    }


def _member_stresses(results: dict, n_members: int) -> np.ndarray:
    """Return every member's stress, Voigt-6 in eV/Å^3, shape ``(n_members, 6)``, from a mace calculator's results."""
    from ase.stress import full_3x3_to_voigt_6_stress

    if 'stress_comm' in results:
        full = np.asarray(results['stress_comm'], dtype=float).reshape(n_members, 3, 3)
        return np.array([full_3x3_to_voigt_6_stress(matrix) for matrix in full])
    return np.asarray(results['stress'], dtype=float).reshape(1, 6)


def _reference_of(atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Reference energy, forces and stress of a frame: ``REF_*`` keys first, else its calculator's results."""
    if 'REF_energy' in atoms.info:
        energy = float(atoms.info['REF_energy'])
        forces = np.asarray(atoms.arrays['REF_forces'], dtype=float)
        stress = atoms.info.get('REF_stress')
    else:
        results = getattr(atoms.calc, 'results', None) or {}
        if 'energy' not in results or 'forces' not in results:
            raise ValueError('a frame to evaluate needs REF_energy/REF_forces or a calculator with energy and forces')
        energy, forces, stress = float(results['energy']), np.asarray(results['forces'], dtype=float), None
        stress = results.get('stress')
    if stress is not None:
        stress = np.asarray(stress, dtype=float).reshape(-1)
        if stress.size == 9:
            from ase.stress import full_3x3_to_voigt_6_stress

            stress = full_3x3_to_voigt_6_stress(stress.reshape(3, 3))
    return energy, forces, stress


class Committee:
    """Several PotentialData predicting together: the mean is the prediction, the spread the uncertainty.

    Built on :mod:`aiida_sianode.engines.committee` (one mace ``MACECalculator`` over all member files); the
    spreads are DP-GEN's deviations defined there.
    """

    def __init__(self, potentials: Sequence[PotentialData], device: str = 'cpu', default_dtype: str | None = None):
        """Check that the members agree on elements and cutoff; load them lazily on first use."""
        potentials = list(potentials)
        if not potentials:
            raise ValueError('a committee needs at least one potential')
        for potential in potentials:
            if not isinstance(potential, PotentialData):
                raise TypeError(f'committee members must be PotentialData, got {type(potential).__name__}')
        elements = {tuple(p.elements) for p in potentials}
        if len(elements) > 1:
            raise ValueError(f'committee members know different elements: {sorted(elements)}')
        cutoffs = {p.r_max for p in potentials}
        if len(cutoffs) > 1:
            raise ValueError(f'committee members have different r_max: {sorted(cutoffs)} Å')
        dtypes = {p.dtype for p in potentials}
        self.potentials = potentials
        self.device = device
        self.default_dtype = default_dtype or ('float64' if 'float64' in dtypes else potentials[0].dtype)
        self._calculator = None

    def __len__(self) -> int:
        return len(self.potentials)

    @property
    def elements(self) -> list[str]:
        """Elements the committee can predict."""
        return list(self.potentials[0].elements)

    @property
    def calculator(self):
        """The mace ``MACECalculator`` over all members (mean in ``results``, members in ``*_comm``)."""
        if self._calculator is None:
            from aiida_sianode.engines.committee import load_committee_calculator

            with contextlib.ExitStack() as stack:
                paths = [stack.enter_context(p.as_model_file()) for p in self.potentials]
                self._calculator = load_committee_calculator(
                    paths, device=self.device, default_dtype=self.default_dtype
                )
        return self._calculator

    def _check_elements(self, atoms) -> None:
        unknown = sorted(set(atoms.get_chemical_symbols()) - set(self.elements))
        if unknown:
            raise ValueError(
                f'the committee knows {", ".join(self.elements)} but the structure has {", ".join(unknown)}'
            )

    def predict(self, atoms) -> dict:
        """Predict ``atoms`` with every member; return the means and spreads.

        Keys: ``energy`` (mean, eV), ``energy_std`` (eV), ``energy_std_per_atom`` (eV/atom), ``energies`` (per member),
        ``forces`` (mean, eV/Å), ``forces_std`` (per component, eV/Å), ``atomic_force_deviation`` (eV/Å, per atom),
        ``max_force_deviation`` (eV/Å), ``member_forces``; for periodic cells ``stress`` (mean Voigt-6, eV/Å^3),
        ``stress_std`` (Voigt-6), ``member_stresses`` and ``stress_std_max``; otherwise those are ``None``.
        Standard deviations are population ones (over the members, ``ddof=0``), as in DP-GEN.
        """
        from aiida_sianode.engines.committee import committee_predict

        self._check_elements(atoms)
        result = committee_predict(self.calculator, atoms)
        energies = np.asarray(result['energies'], dtype=float)
        result['energy_std'] = float(np.std(energies))
        result['forces_std'] = np.std(result['member_forces'], axis=0)
        result['member_stresses'] = None
        result['stress_std'] = None
        if result['stress'] is not None:
            stresses = _member_stresses(self.calculator.results, len(self.potentials))
            result['member_stresses'] = stresses
            result['stress_std'] = np.std(stresses, axis=0)
        return result

    def predict_frames(self, frames) -> dict:
        """Predict many frames; return reference and per-member arrays for error statistics and parity plots.

        Returns ``{'reference': {...}, 'members': [{...}, ...], 'committee': {...}, 'natoms': [...]}`` where each
        ``{...}`` has ``e_per_atom`` (eV/atom, per frame), ``forces`` (all force components, eV/Å) and ``stress``
        (Voigt components of periodic frames with a reference stress, eV/Å^3).
        """
        n_members = len(self.potentials)
        reference = {'e_per_atom': [], 'forces': [], 'stress': []}
        members = [{'e_per_atom': [], 'forces': [], 'stress': []} for _ in range(n_members)]
        committee = {'e_per_atom': [], 'forces': [], 'stress': []}
        natoms = []
        for atoms in frames:
            self._check_elements(atoms)
            energy, forces, stress = _reference_of(atoms)
            count = len(atoms)
            natoms.append(count)
            prediction = self.predict(atoms)
            reference['e_per_atom'].append(energy / count)
            reference['forces'].append(forces.reshape(-1))
            committee['e_per_atom'].append(prediction['energy'] / count)
            committee['forces'].append(prediction['forces'].reshape(-1))
            for index, member in enumerate(members):
                member['e_per_atom'].append(prediction['energies'][index] / count)
                member['forces'].append(prediction['member_forces'][index].reshape(-1))
            if stress is not None and prediction['stress'] is not None:
                stresses = prediction['member_stresses']
                reference['stress'].append(stress)
                committee['stress'].append(np.asarray(prediction['stress']).reshape(-1))
                for index, member in enumerate(members):
                    member['stress'].append(stresses[index])

        def stack(record):
            return {
                'e_per_atom': np.asarray(record['e_per_atom'], dtype=float),
                'forces': np.concatenate(record['forces']) if record['forces'] else np.zeros(0),
                'stress': np.concatenate(record['stress']) if record['stress'] else np.zeros(0),
            }

        return {
            'reference': stack(reference),
            'members': [stack(member) for member in members],
            'committee': stack(committee),
            'natoms': natoms,
        }

    def evaluate(self, dataset_or_frames, split: str | None = None, include_isolated_atoms: bool = False) -> dict:
        """Return per-member and committee RMSE/MAE on a DatasetData (optionally one ``split``) or a list of frames.

        Errors: energy per atom in meV/atom, force components in meV/Å, stress components in meV/Å^3. Frames of
        ``config_type == 'IsolatedAtom'`` are left out unless ``include_isolated_atoms`` (MACE reproduces its own
        E0s exactly, so they only dilute the statistics).
        Returns ``{'n_frames', 'n_atoms', 'members': [{'uuid', 'seed', **metrics}], 'committee': metrics}``.
        """
        frames = _frames_of(dataset_or_frames, split)
        if not include_isolated_atoms:
            frames = [atoms for atoms in frames if atoms.info.get('config_type') != 'IsolatedAtom']
        if not frames:
            raise ValueError('nothing to evaluate: no frames (check the split and the isolated-atom filter)')
        data = self.predict_frames(frames)
        members = []
        for potential, predicted in zip(self.potentials, data['members']):
            members.append(
                {'uuid': potential.uuid, 'seed': potential.seed, **error_metrics(data['reference'], predicted)}
            )
        return {
            'n_frames': len(frames),
            'n_atoms': int(sum(data['natoms'])),
            'members': members,
            'committee': error_metrics(data['reference'], data['committee']),
        }


def _frames_of(dataset_or_frames, split: str | None) -> list:
    """Frames from a DatasetData (through ``get_frames(split)``) or a list of ``ase.Atoms`` (``split`` filters
    on ``info['split']`` when given)."""
    if hasattr(dataset_or_frames, 'get_frames'):
        return dataset_or_frames.get_frames(split)
    frames = list(dataset_or_frames)
    if split is not None:
        frames = [atoms for atoms in frames if atoms.info.get('split') == split]
    return frames
