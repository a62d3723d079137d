"""The ``gcann`` command line, one module per command group.

* ``gcann dirac ...``  the Dirac-GAN testbed (:mod:`gcann.cli.dirac`)
* ``gcann train``, ``gcann sample``  training runs (:mod:`gcann.cli.train`)
* ``gcann sweep``  many runs through submitit (:mod:`gcann.cli.sweep`)
* ``gcann report``, ``gcann verdict``  multi-seed reports and the verdict on GCANN's claims

User mistakes (any :class:`gcann.errors.GcannError`, or a click usage error) are
reported here, once, as one line on stderr (``gcann: error: ...``) with exit status 2
(3 for a diverged run); any other exception is a bug and keeps its traceback; nothing is half-written (outputs are written to a temporary file
and moved into place, :mod:`gcann.fileio`).
"""
from __future__ import annotations


import click

from gcann.errors import GcannError, one_line

from .common import UserError
from . import metrics as _metrics
from .controllers import controllers
from . import train as _train
from .dirac import dirac
from .report import report
from .ring import ring
from .verdict import verdict

__all__ = ["UserError", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gcann", prog_name="gcann", message="%(prog)s %(version)s")
def cli():
    """gcann: Dirac-GAN dynamics and the GCANN training controller."""


cli.add_command(dirac)
cli.add_command(ring)
cli.add_command(controllers)
_train.register(cli)
cli.add_command(_metrics.fid)
cli.add_command(_metrics.eval_run)
cli.add_command(report)
cli.add_command(verdict)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="gcann", standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("gcann: aborted", err=True)
        return 1
    except click.ClickException as e:
        msg = e.format_message().replace("\n", " ")
        click.echo(f"gcann: error: {msg}", err=True)
        return e.exit_code if e.exit_code not in (0, 1) else 2
    except GcannError as e:
        click.echo(f"gcann: error: {one_line(e)}", err=True)
        return e.exit_code
    return 0
