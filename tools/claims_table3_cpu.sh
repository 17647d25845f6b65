#!/usr/bin/env bash
# Issue 27's step-matched Table 3 sized for a 2-core CPU (docs/schedules.md, "Table 3 at matched steps on this CPU"):
# 003's six schedules on the MT model narrowed as recipes/claims/mean_teacher_cpu.yaml narrows the CRNN (32 mels, hop
# 512, CNN 8/16/32 in three blocks, BiGRU 2 x 32), 120 minutes of the dcase-disjoint stand-in, 3 seeds, one run at a
# time on one thread. Each task gets EPOCHS x STEPS optimiser steps in every arm: SoftMTL and CrossSoftMTL train both
# tasks on every step for EPOCHS epochs, HardMTL 1:1 and FreezeMTL (first_epochs = EPOCHS) one task per step for
# twice the epochs.
#
#   tools/claims_table3_cpu.sh OUT      then  python tools/claims_collect.py OUT > OUT/results.json
#                                             python tools/claims_tables.py OUT/results.json
set -u
out=${1:?usage: tools/claims_table3_cpu.sh OUT}
epochs=${EPOCHS:-5}; steps=${STEPS:-100}; seeds=${SEEDS:-3}
two=$((2 * epochs))
mkdir -p "$out"
cpu_size=(--set data.minutes=120
          --set "features={name: logmel, sample_rate: 16000, n_fft: 1024, win_samples: 1024, hop_samples: 512, n_mels: 32, fmax: 8000}"
          --set "model.encoder.channels=[8,16,32]" --set "model.encoder.pools=[[2,2],[2,4],[1,4]]"
          --set model.heads.event.hidden_size=32)
common=(--grid seed=0 --seeds "$seeds" --jobs 1 --threads 1 --set evaluate.plots=false
        --set "train.steps_per_epoch=$steps" "${cpu_size[@]}"
        --metric scene/accuracy --metric event/collar_f1/micro --metric event/segment_f1/micro
        --metric event/frame_micro_f1 --metric event/psds1)

sweep() {  # NAME RECIPE ARGS...
    local name=$1 recipe=$2; shift 2
    [ -f "$out/$name.done" ] && return  # a finished sweep is kept: delete OUT/NAME.done to run it again
    echo "$(date +%T) start $name"
    /usr/bin/time -f "$name: %e s wall" jasc sweep "$recipe" "${common[@]}" "$@" --out "$out/$name" > "$out/$name.log" 2>&1 \
        && touch "$out/$name.done"
    case $name in cross_*)  # CrossMTL's EMA teacher, evaluated like the student
        for run in "$out/$name"/runs/*/; do jasc evaluate "$run" --model teacher >> "$out/$name.log" 2>&1; done;;
    esac
    echo "$(date +%T) done $name"
}
sweep soft recipes/mt003_soft.yaml --set "train.epochs=$epochs"
sweep freeze_sed_asc recipes/mt003_freeze_sed_asc.yaml --set "train.epochs=$two" --set "schedule.first_epochs=$epochs"
sweep freeze_asc_sed recipes/mt003_freeze_asc_sed.yaml --set "train.epochs=$two" --set "schedule.first_epochs=$epochs"
sweep hard recipes/mt003_hard.yaml --set "train.epochs=$two"
sweep cross_hard recipes/mt003_cross_hard.yaml --set "train.epochs=$two"
sweep cross_soft recipes/mt003_cross_soft.yaml --set "train.epochs=$epochs"
