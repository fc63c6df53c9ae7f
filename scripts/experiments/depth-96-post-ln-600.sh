#!/usr/bin/env bash
# Experiment 2b (docs/experiments.md): the 96-block Post-LN pair of depth-96-post-ln.sh, 4x longer (600 steps), at
# lr 1e-2 and 1e-3 (docs/experiments.md says in which order and why these two). One command:
# scripts/experiments/depth-96-post-ln-600.sh
source "$(dirname "$0")/common.sh"
experiment_folder depth-96-post-ln-600
for lr in 0.01 0.001; do
    for init in dslm xavier; do
        train_run "$init-lr$lr" --data brown --layers 96 --d-model 64 --heads 4 --seq-len 64 --norm post --init "$init" --batch 4 \
            --steps 600 --lr "$lr" --eval-every 100 --monitor-every 0 --seed 1
    done
done
dslm plot "$EXPERIMENT/dslm-lr0.001" "$EXPERIMENT/xavier-lr0.001" --quantity validation --labels "DSLM lr 1e-3,Xavier lr 1e-3" \
    --unigram ~/.cache/dslm/brown/brown.tokens \
    --title "96-block Post-LN, d 64, 600 steps: validation loss" --out docs/images/experiments-depth-96-post-ln-600.png | tee -a "$SUMMARY"
