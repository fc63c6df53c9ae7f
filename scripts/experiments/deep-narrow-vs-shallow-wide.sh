#!/usr/bin/env bash
# Experiment 3 (docs/experiments.md): a deep-narrow DSLM decoder (16 blocks, d 64: 824,448 parameters) against a
# shallow-wide one (4 blocks, d 128: 842,496 parameters, 2.2% more), the same tokens in the same order, the same
# schedule. One command: scripts/experiments/deep-narrow-vs-shallow-wide.sh
source "$(dirname "$0")/common.sh"
experiment_folder deep-narrow-vs-shallow-wide
common=(--data brown --heads 4 --seq-len 128 --norm pre --init dslm --batch 8 --steps 250 --lr 0.002 --warmup 30 --eval-every 50 --monitor-every 0 --seed 1)
train_run deep-16x64 --layers 16 --d-model 64 "${common[@]}"
train_run shallow-4x128 --layers 4 --d-model 128 "${common[@]}"
runs=("$EXPERIMENT/deep-16x64" "$EXPERIMENT/shallow-4x128")
labels="deep-narrow: 16 blocks d 64,shallow-wide: 4 blocks d 128"
dslm plot "${runs[@]}" --quantity validation --labels "$labels" --unigram "$HOME/.cache/dslm/brown/brown.tokens" \
    --title "Same parameters (within 2.2%), same tokens: validation loss" --out docs/images/experiments-deep-narrow-vs-shallow-wide.png | tee -a "$SUMMARY"
dslm plot "${runs[@]}" --quantity loss --labels "$labels" \
    --title "Same parameters, same tokens: training loss" --out "$EXPERIMENT/training-loss.png" | tee -a "$SUMMARY"
