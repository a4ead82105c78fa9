"""``TrainParser`` (``sianode.train``): turn the training engine's files into a PotentialData and a metrics Dict."""

from __future__ import annotations

import json
import math
import pathlib

from aiida import orm
from aiida.parsers import Parser

from aiida_sianode.engines import train as engine

#: the per-split error keys that go into the PotentialData's ``metrics`` attribute
SPLIT_KEYS = ('train', 'valid', 'test')

#: words in the scheduler's stderr that mean the job was killed for memory
OUT_OF_MEMORY_MARKERS = ('out of memory', 'oom-kill', 'oom_kill', 'memoryerror', "can't allocate memory")


def _finite_or_none(value):
    """Return ``value`` with non-finite floats replaced by ``None``, recursively (a Dict node stores JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


class TrainParser(Parser):
    """Parse ``metrics.json``, ``mace.model`` and ``test_predictions.npz`` of a :class:`TrainCalculation`."""

    def parse(self, **kwargs):
        """Attach ``metrics`` (always when readable), ``potential`` and ``test_predictions`` (on success)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix='sianode-train-') as scratch:
            self._scratch = pathlib.Path(scratch)
            return self._parse(kwargs.get('retrieved_temporary_folder'))

    def _parse(self, temporary: str | None):
        try:
            content = self.retrieved.base.repository.get_object_content(engine.METRICS_FILENAME)
        except FileNotFoundError:
            if self._killed_for_memory():
                return self.exit_codes.ERROR_OUT_OF_MEMORY.format(error='the job was killed for memory')
            return self.exit_codes.ERROR_MISSING_METRICS
        try:
            metrics = json.loads(content)
            status = metrics['status']
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            return self.exit_codes.ERROR_UNREADABLE_METRICS.format(error=str(error))

        self.out('metrics', orm.Dict(_finite_or_none(metrics)))
        error = metrics.get('error', 'no message')
        if status == engine.STATUS_NAN_LOSS:
            return self.exit_codes.ERROR_NAN_LOSS.format(error=error)
        if status == engine.STATUS_OUT_OF_MEMORY:
            return self.exit_codes.ERROR_OUT_OF_MEMORY.format(error=error)
        if status == engine.STATUS_INVALID_INPUT:
            return self.exit_codes.ERROR_INVALID_TRAINING_INPUT.format(error=error)
        if status != engine.STATUS_OK:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(error=error)

        model_path = self._find(engine.MODEL_FILENAME, temporary)
        if model_path is None:
            return self.exit_codes.ERROR_MISSING_MODEL
        from aiida_sianode.data.potential import PotentialData

        dataset = self.node.inputs.dataset
        split_metrics = {split: metrics[split] for split in SPLIT_KEYS if split in metrics}
        seed = metrics.get('parameters', {}).get('seed')
        try:
            potential = PotentialData.from_model_file(
                model_path, training_set_uuid=dataset.uuid, metrics=split_metrics, seed=seed
            )
        except (ValueError, TypeError, OSError) as exception:
            return self.exit_codes.ERROR_UNREADABLE_MODEL.format(error=str(exception))
        self.out('potential', potential)

        predictions_path = self._find(engine.PREDICTIONS_FILENAME, temporary)
        if predictions_path is not None:
            import numpy as np

            predictions = orm.ArrayData()
            with np.load(predictions_path) as arrays:
                for name in arrays.files:
                    predictions.set_array(name, arrays[name])
            self.out('test_predictions', predictions)
        return None

    def _find(self, name: str, temporary: str | None) -> pathlib.Path | None:
        """Return the path of a retrieved file: the temporary folder first, else a copy out of ``retrieved``."""
        if temporary:
            path = pathlib.Path(temporary) / name
            if path.is_file():
                return path
        if name in self.retrieved.base.repository.list_object_names():
            target = self._scratch / name
            target.write_bytes(self.retrieved.base.repository.get_object_content(name, mode='rb'))
            return target
        return None

    def _killed_for_memory(self) -> bool:
        """Return whether the scheduler's or the engine's stderr says the job ran out of memory."""
        from aiida_sianode.calculations.train import TrainCalculation

        texts = [self.node.get_scheduler_stderr() or '']
        if TrainCalculation.STDERR_FILENAME in self.retrieved.base.repository.list_object_names():
            texts.append(self.retrieved.base.repository.get_object_content(TrainCalculation.STDERR_FILENAME))
        text = '\n'.join(texts).lower()
        return any(marker in text for marker in OUT_OF_MEMORY_MARKERS)
