"""Reading YAML files into pydantic models, with every problem named by the dotted path of its key.

Used by the campaign specs (:mod:`aiida_sianode.campaign_spec`) and the cluster files
(:mod:`aiida_sianode.deploy.cluster`): both refuse a bad file before anything is stored or run.
"""

from __future__ import annotations

import pathlib
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar('Model', bound=BaseModel)


def format_errors(error: ValidationError, prefix: str = '') -> str:
    """Return one line per problem of ``error``: the dotted path of the key, then what is wrong with it."""
    lines = []
    for item in error.errors():
        where = '.'.join(str(part) for part in (prefix, *item['loc']) if part != '') or '<top>'
        message = item['msg'].removeprefix('Value error, ')
        if item['type'] == 'extra_forbidden':
            message = 'unknown key'
        lines.append(f'  {message}' if where == '<top>' else f'  {where}: {message}')
    return '\n'.join(lines)


def validate_mapping(data: Any, model: type[Model], error: type[Exception], source: str, what: str) -> Model:
    """Validate ``data`` (a YAML file's content) against ``model``.

    :param what: the kind of file in words (``'campaign spec'``), for the messages.
    :raises error: when ``data`` is not a mapping, or listing every problem with the path of its key.
    """
    if not isinstance(data, dict):
        raise error(f'{source}: a {what} is a mapping of keys, got {type(data).__name__}')
    try:
        return model.model_validate(data)
    except ValidationError as problems:
        raise error(f'{source} is not a valid {what}:\n{format_errors(problems)}') from None


def read_yaml(path: str | pathlib.Path, error: type[Exception], what: str) -> Any:
    """Return the content of the YAML file at ``path``.

    :raises error: the file does not exist or is not valid YAML.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise error(f'{what} `{path}` does not exist')
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as problem:
        raise error(f'{path} is not valid YAML: {problem}') from None
