#!/usr/bin/env bash
# Times OpenJPEG's own decoder on the OpenSim test textures at reduce levels 0-2, for
# comparison with `cargo bench -p opensim-textures --bench decode`.
# Needs: apt-get install -y libopenjp2-tools hyperfine
# Note: each run includes process start-up and writing the .raw output file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
testdata="${OPENSIM_PROTOCOL:-$here/../../../../shared/protocol}/testdata"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
threads="${OPJ_THREADS:-1}"
for f in "$testdata"/*.j2c; do
  name="$(basename "$f" .j2c)"
  cp "$f" "$out/$name.j2k"
  for r in 0 1 2; do
    hyperfine --warmup 5 --min-runs 50 -N --export-json "$out/$name-$r.json" \
      "opj_decompress -quiet -threads $threads -i $out/$name.j2k -o $out/$name-$r.raw -r $r" >/dev/null 2>&1
    python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f'{sys.argv[2]:55s} -r {sys.argv[3]}: mean {r[\"mean\"]*1e3:.3f} ms  min {r[\"min\"]*1e3:.3f} ms')" \
      "$out/$name-$r.json" "$name" "$r"
  done
done
# Baseline: process start-up alone.
hyperfine --warmup 5 --min-runs 50 -N -i --export-json "$out/h.json" "opj_decompress -h" >/dev/null
python3 -c "import json; r=json.load(open('$out/h.json'))['results'][0]; print(f'opj_decompress -h (start-up only): mean {r[\"mean\"]*1e3:.3f} ms')"
