#!/usr/bin/env bash
# Experiment 2 (docs/experiments.md): 96-block Post-LN decoders, DSLM init against Xavier init, the same data, steps,
# seed and learning rate, at dslm train's default learning rate 2e-3 and at a 5x larger 1e-2 (where an unstable init
# should show; docs/experiments.md says how the two were chosen). One command: scripts/experiments/depth-96-post-ln.sh
source "$(dirname "$0")/common.sh"
experiment_folder depth-96-post-ln
for lr in 0.002 0.01; do
    for init in dslm xavier; do
        train_run "$init-lr$lr" --data brown --layers 96 --d-model 64 --heads 4 --seq-len 64 --norm post --init "$init" --batch 4 \
            --steps 150 --lr "$lr" --warmup 30 --eval-every 50 --monitor-every 0 --seed 1
    done
done
runs=(dslm-lr0.002 xavier-lr0.002 dslm-lr0.01 xavier-lr0.01)
labels="DSLM lr 2e-3,Xavier lr 2e-3,DSLM lr 1e-2,Xavier lr 1e-2"
dslm plot "${runs[@]/#/$EXPERIMENT/}" --quantity loss --labels "$labels" \
    --title "96-block Post-LN, d 64: training loss" --out docs/images/experiments-depth-96-post-ln.png | tee -a "$SUMMARY"
dslm plot "${runs[@]/#/$EXPERIMENT/}" --quantity grad_norm --log-y --labels "$labels" \
    --title "96-block Post-LN, d 64: gradient norm" --out docs/images/experiments-depth-96-post-ln-grad-norm.png | tee -a "$SUMMARY"
dslm plot "${runs[@]/#/$EXPERIMENT/}" --quantity validation --labels "$labels" \
    --title "96-block Post-LN, d 64: validation loss" --out "$EXPERIMENT/validation.png" | tee -a "$SUMMARY"
