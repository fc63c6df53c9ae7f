#!/usr/bin/env bash
# Experiment 1 (docs/experiments.md): an 8-block DSLM Pre-LN byte-level decoder on the Brown corpus against the unigram
# bits per byte of the same validation text. One command: scripts/experiments/brown-8-layer.sh
source "$(dirname "$0")/common.sh"
experiment_folder brown-8-layer
dslm data brown | tee -a "$SUMMARY"
train_run dslm-8 --data brown --layers 8 --d-model 128 --heads 4 --seq-len 128 --norm pre --init dslm --batch 8 \
    --steps 300 --lr 0.002 --warmup 30 --eval-every 50 --monitor-every 0 --seed 1
dslm plot "$EXPERIMENT/dslm-8" --quantity validation --labels "8-block DSLM Pre-LN d 128" --unigram "$HOME/.cache/dslm/brown/brown.tokens" \
    --title "Brown corpus: validation loss against the unigram baseline" --out docs/images/experiments-brown-8-layer.png | tee -a "$SUMMARY"
