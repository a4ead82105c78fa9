"""The installation self-check (``make check``): versions printed, both local labelers compute."""

from aiida_sianode import selfcheck


def test_selfcheck_passes_and_names_every_package(capsys):
    assert selfcheck.main() == 0
    out = capsys.readouterr().out
    for distribution in selfcheck.PACKAGES:
        assert f'  {distribution} ' in out or f'  {distribution:<14}' in out
    assert 'gpaw  Si2 single point: E = ' in out
    assert 'xtb   Si2 single point: E = ' in out
    assert 'self-check passed' in out


def test_selfcheck_reports_a_failing_labeler(capsys):
    problems = selfcheck.check_labeler('xtb', {'method': 'no-such-method'})
    assert problems and problems[0].startswith('xtb single point of Si2 failed')


def test_selfcheck_reports_a_missing_package(monkeypatch, capsys):
    monkeypatch.setattr(selfcheck, 'PACKAGES', {'no-such-distribution-xyz': 'nosuchmodule'})
    assert selfcheck.check_imports() == ['no-such-distribution-xyz is not installed']
