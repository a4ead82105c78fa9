"""Label work chains for the local codes: GPAW (plane-wave PBE) and GFN1-xTB (tblite).

:class:`LocalLabelWorkChain` runs :class:`~aiida_sianode.calculations.label.LocalLabelCalculation` in a
``BaseRestartWorkChain`` loop and satisfies the :class:`~aiida_sianode.workflows.label.base.CommonLabelWorkChain`
interface (``structure`` in, ``label`` out, ``get_builder_from_protocol``). When the SCF does not converge it
restarts with twice the iterations and half the mixing step; from the third restart on it also doubles the smearing
(this changes the level of theory, which the label records and the report says), at most ``scf_restarts`` times,
then it stops with exit code 410. Every failed calculation stays in the provenance graph.
"""

from __future__ import annotations

import copy

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from aiida_sianode.calculations.label import LocalLabelCalculation
from aiida_sianode.protocols import recursive_merge
from aiida_sianode.workflows.label.base import CommonLabelWorkChain

__all__ = ('GpawLabelWorkChain', 'LocalLabelWorkChain', 'XtbLabelWorkChain')

#: GPAW's default density mixer (MSR1) step when the parameters leave ``mixer_beta`` unset.
GPAW_DEFAULT_MIXER_BETA = 0.05
#: Smearing is doubled from this restart on (counting from 1), after the cheaper remedies were tried twice.
SMEARING_RESTART = 3
#: A calculation whose engine ended without ``results.json`` (SIGKILL, ``scancel``, walltime) is rerun this often.
LOST_RUN_RETRIES = 1


class LocalLabelWorkChain(CommonLabelWorkChain, BaseRestartWorkChain):
    """Label a structure with a local code, restarting the calculation when its SCF does not converge."""

    _process_class = LocalLabelCalculation

    @classmethod
    def define(cls, spec):
        """Define the inputs (``structure``, ``calc``, ``scf_restarts``), the outline and the outputs."""
        super().define(spec)
        spec.expose_inputs(
            LocalLabelCalculation,
            namespace='calc',
            exclude=('structure',),
            namespace_options={'help': 'Inputs of the `LocalLabelCalculation`, the structure aside.'},
        )
        spec.input(
            'scf_restarts',
            valid_type=orm.Int,
            default=lambda: orm.Int(3),
            help='How many times a calculation whose SCF did not converge is restarted with stronger settings.',
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(
                cls.run_process,
                cls.inspect_process,
            ),
            cls.results,
        )
        spec.output(
            'output_parameters',
            valid_type=orm.Dict,
            required=False,
            help='SCF information, wall time and free energy of the calculation that made the label.',
        )

    @classmethod
    def validate_inputs(cls, value, ctx) -> str | None:
        """Refuse a bad structure (see the base class) and parameters made for another labeler."""
        message = super().validate_inputs(value, ctx)
        if message:
            return message
        if 'scf_restarts' in value and 'max_iterations' in value:
            restarts, iterations = value['scf_restarts'].value, value['max_iterations'].value
            if restarts >= iterations:
                return f'scf_restarts ({restarts}) must be smaller than max_iterations ({iterations})'
        try:
            labeler = value['calc']['parameters']['labeler']
        except (KeyError, TypeError):
            return None
        if cls.labeler and labeler != cls.labeler:
            return f'{cls.__name__} labels with {cls.labeler}, but calc.parameters asks for labeler `{labeler}`'
        return None

    @classmethod
    def get_builder_from_protocol_inputs(
        cls, code: orm.Code, structure: orm.StructureData, inputs: dict, options: dict | None = None, **kwargs
    ):
        """Return a builder from the merged protocol ``inputs``; ``options`` are merged over the protocol's."""
        if kwargs:
            raise TypeError(f'{cls.__name__}.get_builder_from_protocol got unexpected arguments: {", ".join(kwargs)}')
        if not isinstance(code, orm.AbstractCode):
            raise TypeError(f'`code` must be an AiiDA code, got {type(code).__name__}')
        plugin = code.default_calc_job_plugin
        if plugin not in (None, 'sianode.label'):
            raise ValueError(f'code `{code.full_label}` runs `{plugin}`, not `sianode.label`')
        calc = inputs['calc']
        builder = cls.get_builder()
        builder.structure = structure
        builder.calc.code = code
        builder.calc.parameters = orm.Dict(calc['parameters'])
        builder.calc.metadata.options = recursive_merge(calc['metadata']['options'], options or {})
        builder.max_iterations = orm.Int(inputs['max_iterations'])
        builder.scf_restarts = orm.Int(inputs['scf_restarts'])
        builder.clean_workdir = orm.Bool(inputs['clean_workdir'])
        return builder

    def setup(self):
        """Prepare the inputs of the first calculation."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(LocalLabelCalculation, 'calc'))
        self.ctx.inputs.structure = self.inputs.structure
        self.ctx.inputs.parameters = self.ctx.inputs.parameters.get_dict()
        self.ctx.scf_restarts = 0

    def get_outputs(self, node):
        """Return the label and the output parameters of the calculation ``node``."""
        return {key: node.outputs[key] for key in ('label', 'output_parameters') if key in node.outputs}

    def strengthen_scf(self, parameters: dict, restart: int) -> tuple[dict, list[str]]:
        """Return ``parameters`` changed for restart number ``restart`` (from 1) and the changes in words."""
        raise NotImplementedError(f'{type(self).__name__} does not know how to strengthen the SCF')

    @process_handler(priority=600, exit_codes=[LocalLabelCalculation.exit_codes.ERROR_SCF_NOT_CONVERGED])
    def handle_scf_not_converged(self, node):
        """Restart with more iterations and smaller mixing (and later larger smearing), or give up with 410."""
        allowed = self.inputs.scf_restarts.value
        if self.ctx.scf_restarts >= allowed:
            self.report(
                f'the SCF of {node.process_label}<{node.pk}> did not converge and all {allowed} restarts are used'
            )
            return ProcessHandlerReport(True, self.exit_codes.ERROR_SCF_NOT_CONVERGED)
        self.ctx.scf_restarts += 1
        parameters, changes = self.strengthen_scf(copy.deepcopy(self.ctx.inputs.parameters), self.ctx.scf_restarts)
        self.ctx.inputs.parameters = parameters
        self.report(
            f'the SCF of {node.process_label}<{node.pk}> did not converge; restart {self.ctx.scf_restarts} of '
            f'{allowed} with {"; ".join(changes)}'
        )
        return ProcessHandlerReport(True)

    @process_handler(
        priority=500,
        exit_codes=[
            LocalLabelCalculation.exit_codes.ERROR_CODE_FAILED,
            LocalLabelCalculation.exit_codes.ERROR_INVALID_INPUT,
        ],
    )
    def handle_code_failed(self, node):
        """Stop with 420: the code itself failed, which a restart with the same inputs would not mend."""
        self.report(f'{node.process_label}<{node.pk}> failed: {node.exit_message}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_CODE_FAILED)

    @process_handler(priority=450, exit_codes=[LocalLabelCalculation.exit_codes.ERROR_LEVEL_OF_THEORY_MISMATCH])
    def handle_level_of_theory_mismatch(self, node):
        """Stop with 440: the label would record settings the code did not run with."""
        self.report(f'{node.process_label}<{node.pk}>: {node.exit_message}')
        return ProcessHandlerReport(
            True, self.exit_codes.ERROR_LEVEL_OF_THEORY_MISMATCH.format(reason=node.exit_message)
        )

    @process_handler(
        priority=400,
        exit_codes=[
            LocalLabelCalculation.exit_codes.ERROR_NO_RESULTS,
            LocalLabelCalculation.exit_codes.ERROR_UNREADABLE_RESULTS,
            LocalLabelCalculation.exit_codes.ERROR_INCOMPLETE_RESULTS,
        ],
    )
    def handle_missing_outputs(self, node):
        """Run the same inputs once more when the engine ended without ``results.json`` (killed, its job cancelled
        or out of walltime: nothing about the inputs is wrong), with twice the walltime when one was set; stop with
        300 when that happens again, or when ``results.json`` is there but unreadable or incomplete."""
        lost = self.ctx.get('lost_runs', 0)
        if node.exit_status == LocalLabelCalculation.exit_codes.ERROR_NO_RESULTS.status and lost < LOST_RUN_RETRIES:
            self.ctx.lost_runs = lost + 1
            options = self.ctx.inputs.metadata.setdefault('options', {})
            walltime = options.get('max_wallclock_seconds')
            more_time = ''
            if walltime:
                options['max_wallclock_seconds'] = 2 * int(walltime)
                more_time = f', walltime {options["max_wallclock_seconds"]} s'
            self.report(
                f'{node.process_label}<{node.pk}> ended without results (engine killed, job cancelled or out of '
                f'walltime?): rerunning the same inputs ({self.ctx.lost_runs} of {LOST_RUN_RETRIES}{more_time})'
            )
            return ProcessHandlerReport(True)
        self.report(f'{node.process_label}<{node.pk}> left no usable results: {node.exit_message}')
        return ProcessHandlerReport(True, self.exit_codes.ERROR_MISSING_OUTPUTS)


class GpawLabelWorkChain(LocalLabelWorkChain):
    """Label a periodic structure with GPAW: plane waves, PBE, PAW setups from gpaw-data."""

    labeler = 'gpaw'
    _protocol_file = 'label_gpaw'

    def strengthen_scf(self, parameters: dict, restart: int) -> tuple[dict, list[str]]:
        """Double ``maxiter``, halve ``mixer_beta``; from restart :data:`SMEARING_RESTART` on double the smearing."""
        changes = []
        parameters['maxiter'] = 2 * int(parameters.get('maxiter', 300))
        changes.append(f'maxiter {parameters["maxiter"]}')
        beta = parameters.get('mixer_beta') or GPAW_DEFAULT_MIXER_BETA
        parameters['mixer_beta'] = beta / 2
        changes.append(f'mixer_beta {parameters["mixer_beta"]:g}')
        if restart >= SMEARING_RESTART:
            smearing = dict(parameters.get('smearing') or {'type': 'marzari-vanderbilt', 'width_ev': 0.1})
            smearing['width_ev'] = 2 * float(smearing['width_ev'])
            parameters['smearing'] = smearing
            changes.append(f'smearing width {smearing["width_ev"]:g} eV (the level of theory changes)')
        return parameters, changes


class XtbLabelWorkChain(LocalLabelWorkChain):
    """Label a molecule or a periodic structure with GFN1-xTB (tblite)."""

    labeler = 'xtb'
    needs_periodic = False
    _protocol_file = 'label_xtb'

    def strengthen_scf(self, parameters: dict, restart: int) -> tuple[dict, list[str]]:
        """Double ``max_iterations``, halve ``mixer_damping``; later double the electronic temperature."""
        changes = []
        parameters['max_iterations'] = 2 * int(parameters.get('max_iterations', 250))
        changes.append(f'max_iterations {parameters["max_iterations"]}')
        parameters['mixer_damping'] = float(parameters.get('mixer_damping', 0.4)) / 2
        changes.append(f'mixer_damping {parameters["mixer_damping"]:g}')
        if restart >= SMEARING_RESTART:
            parameters['electronic_temperature_k'] = 2 * float(parameters.get('electronic_temperature_k', 300.0))
            changes.append(
                f'electronic temperature {parameters["electronic_temperature_k"]:g} K (the level of theory changes)'
            )
        return parameters, changes
