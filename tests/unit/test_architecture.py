"""The shape of the code, checked like behaviour: data flows one way, every error has one home, modules and functions
stay small enough to read. Each test says what a change broke and where."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

import registry
import registry.errors

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("registry", "api", "cli", "tests", "benchmarks", "migrations")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# A function may be longer when the line right above it (or above its decorators) says why.
LONG_REASON = re.compile(r"^\s*# Long: \S")
# Answered by the body-size middleware before FastAPI reads a body; FastAPI turns any other exception raised while
# reading a body into a 400, so this one has to be Starlette's HTTPException.
HTTP_LAYER_ERRORS = {"api.app.BodyTooLarge"}


def _python_files() -> Iterator[Path]:
    for directory in SOURCE_DIRS:
        yield from sorted((ROOT / directory).rglob("*.py"))


def test_import_contracts_in_pyproject_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """No cycles between the domain's packages (or the modules of one package); the domain imports no web layer."""
    existing = [log for log in logging.root.manager.loggerDict.values() if isinstance(log, logging.Logger)]
    enabled = [log for log in existing if not log.disabled]
    try:
        code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        # import-linter configures logging and so disables every logger it does not name (registry.workers among
        # them): a later test reading a warning from caplog would then read nothing.
        for log in enabled:
            log.disabled = False
    assert code == 0, capsys.readouterr().out


def _domain_and_api_modules() -> Iterator[str]:
    for package in ("registry", "api", "cli"):
        module = importlib.import_module(package)
        yield package
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if not info.name.endswith("__main__"):
                yield info.name


def test_every_error_class_lives_in_registry_errors() -> None:
    strays = []
    for name in _domain_and_api_modules():
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and name != "registry.errors"
                and f"{name}.{attribute}" not in HTTP_LAYER_ERRORS
            ):
                strays.append(f"{name}.{attribute}")
    assert not strays, f"error classes outside registry/errors.py: {strays}"


def test_the_error_tree_in_the_docstring_names_every_error_with_its_status() -> None:
    doc = registry.errors.__doc__ or ""
    by_name = {re.sub(r"^[│├└─\s]+", "", line).split()[0]: line for line in doc.splitlines() if re.search(r"\w", line)}
    for name, value in vars(registry.errors).items():
        if not (inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == "registry.errors"):
            continue
        if issubclass(value, registry.errors.RegistryError):
            line = by_name.get(name)
            assert line is not None, f"{name} is not drawn in the error tree"
            assert re.search(rf"\b{value.status}\b", line), f"{name}'s line does not give its status {value.status}"
        else:
            assert re.search(rf"\b{name}\b", doc), f"{name} is not mentioned in registry/errors.py's docstring"


def test_modules_stay_under_500_lines() -> None:
    long_modules = {
        str(path.relative_to(ROOT)): lines
        for path in _python_files()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long_modules, f"split these modules by meaning: {long_modules}"


def test_functions_over_60_lines_say_why_beside_them() -> None:
    unexplained = []
    for path in _python_files():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if length > MAX_FUNCTION_LINES and not (first >= 2 and LONG_REASON.match(lines[first - 2])):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not unexplained, "split these, or put '# Long: <why>' on the line above:\n" + "\n".join(unexplained)


def test_the_domain_package_has_no_entry_point_of_its_own() -> None:
    """`registry` is the command (cli.main); `python -m registry` would need the domain to import the CLI."""
    assert not (Path(registry.__file__).parent / "__main__.py").exists()


def test_the_image_copies_every_package_the_distribution_installs() -> None:
    """`registry` (cli.main) fails in the container if the Dockerfile leaves out a package pyproject.toml installs."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for pattern in packages["find"]["include"]:
        name = pattern.rstrip("*")
        assert re.search(rf"^COPY {name} \./{name}$", dockerfile, re.MULTILINE), f"the Dockerfile does not copy {name}/"
