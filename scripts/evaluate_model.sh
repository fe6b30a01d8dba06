#!/usr/bin/env bash
# Every number a model card reports, for one weights file: Middlebury (both padding modes),
# the triplets, frame-gap-2 triplets (when present) and self-ensembling on Middlebury. Run from
# the repository root; data from SEPCONV_DATA (the data folder, with middlebury/ and triplets/;
# default ../shared/data). Each run writes the table (OUT/NAME.txt), sepconv eval's JSON
# (OUT/NAME.json, with the weights' sha256 and every option) and its stderr (OUT/NAME.log).
#   bash scripts/evaluate_model.sh src/sepconv/weights/files/sepconv-l1.safetensors runs/eval
# Frame-gap-2 triplets: python ../shared/tools/make_triplets.py --out runs/triplets-step2
#   --step 2 <the videos in $SEPCONV_DATA/videos> (needs ffmpeg); set STEP2 to elsewhere.
# Every run scores the DIS flow baselines (bilinear and bicubic warps) in the same sepconv eval
# call. HELD_OUT="clip names" (the clips a model was not trained on, as in its model card)
# adds the triplets and frame-gap-2 triplets of those clips alone, scored plain and after
# removing the global shift of each output (--align: the camera shake of hand-held clips).
set -euo pipefail
WEIGHTS="${1:?usage: scripts/evaluate_model.sh WEIGHTS [OUT]}"
OUT="${2:-runs/eval}"
DATA="${SEPCONV_DATA:-../shared/data}"
for dir in "$DATA/middlebury" "$DATA/triplets"; do
  [ -d "$dir" ] || { echo "$dir not found: set SEPCONV_DATA to the data folder" >&2; exit 2; }
done
STEP2="${STEP2:-runs/triplets-step2}"
mkdir -p "$OUT"

run() {  # NAME DATASET DIR [OPTIONS...]: prints "NAME: mean ... (N s)"
  local name="$1" dataset="$2" dir="$3" start=$SECONDS
  shift 3
  sepconv eval "$dataset" "$dir" --weights "$WEIGHTS" --json "$OUT/$name.json" "$@" \
    > "$OUT/$name.txt" 2> "$OUT/$name.log" || { tail -n 1 "$OUT/$name.log"; exit 1; }
  local summary
  summary=$(grep '^mean PSNR:' "$OUT/$name.txt" || grep '^mean' "$OUT/$name.txt")
  echo "$name: $summary ($((SECONDS - start)) s)"
}

BASELINES=(--method sepconv flow flow-cubic)
run middlebury middlebury "$DATA/middlebury" "${BASELINES[@]}"
run middlebury-paper-padding middlebury "$DATA/middlebury" --padding paper
run triplets triplets "$DATA/triplets" "${BASELINES[@]}"
if [ -d "$STEP2" ]; then
  run triplets-step2 triplets "$STEP2" "${BASELINES[@]}"
fi
if [ -n "${HELD_OUT:-}" ]; then
  read -r -a clips <<< "$HELD_OUT"
  run held-out triplets "$DATA/triplets" "${BASELINES[@]}" --clips "${clips[@]}"
  run held-out-aligned triplets "$DATA/triplets" "${BASELINES[@]}" --clips "${clips[@]}" --align
  if [ -d "$STEP2" ]; then
    run held-out-step2 triplets "$STEP2" "${BASELINES[@]}" --clips "${clips[@]}"
    run held-out-step2-aligned triplets "$STEP2" "${BASELINES[@]}" --clips "${clips[@]}" --align
  fi
fi
for n in 2 8; do
  run "middlebury-ensemble$n" middlebury "$DATA/middlebury" --ensemble "$n"
done
