#!/bin/sh
# Regenerates the API client's types (src/client/schema.d.ts, or the file named) from the
# service's OpenAPI document, made by the app itself: no server needs to run. PYTHON is the
# service's interpreter (the repository's .venv unless set).
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
output="$(realpath -m "${1:-$here/src/client/schema.d.ts}")"
document="$(mktemp --suffix .json)"
trap 'rm -f "$document"' EXIT
cd "$root"
"$python" -c 'import json; from app.main import create_app; from app.settings import Settings; print(json.dumps(create_app(Settings()).openapi(), ensure_ascii=False))' > "$document"
cd "$here"
node_modules/.bin/openapi-typescript "$document" --output "$output" >/dev/null
echo "generated $output"
