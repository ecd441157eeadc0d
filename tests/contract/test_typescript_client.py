"""A TypeScript client builds on the document: openapi-typescript generates its types, and
users.ts (list, create and update users) and devices.ts (a console's device form and table
row) compile against them under tsc --strict."""

import json
from pathlib import Path

import pytest

from .tools import run_tool

pytestmark = pytest.mark.contract

USAGE = [Path(__file__).with_name(name) for name in ("users.ts", "devices.ts")]


def test_users_ts_compiles_against_generated_types(
    node_bin: Path, openapi_path: Path, tmp_path: Path
) -> None:
    types = tmp_path / "antring-api.d.ts"
    # Run outside the tree, so that the generator takes its own minimal lint rules and not
    # redocly.yaml. Fields with a default stay optional in request bodies: a client may leave
    # them out (responses list every field as required anyway).
    run_tool(
        [
            node_bin / "openapi-typescript",
            openapi_path,
            "--output",
            types,
            "--default-non-nullable=false",
        ],
        cwd=tmp_path,
    )
    tsconfig = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "noUncheckedIndexedAccess": True,
            "exactOptionalPropertyTypes": True,
            "target": "ES2022",
            "module": "ESNext",
            "moduleResolution": "Bundler",
            "lib": ["ES2022", "DOM", "DOM.Iterable"],
            "types": [],
            "paths": {"antring-api": [str(types)]},
        },
        "files": [str(path) for path in USAGE],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2), encoding="utf-8")
    run_tool([node_bin / "tsc", "--project", tmp_path / "tsconfig.json", "--pretty", "false"])
