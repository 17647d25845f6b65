#!/usr/bin/env bash
# Issue 27's step-matched comparisons (docs/schedules.md, "Step-matched"): 003's Table 3 schedules with the same
# optimiser steps on each task, and the mean teacher against the same CRNN trained on strong (+ weak) clips only.
# Every sweep runs at once (one process per run); what has finished by DEADLINE_S is collected.
#
#   tools/claims_sweeps.sh OUT [DEADLINE_S]      then  python tools/claims_tables.py OUT/results.json
#
# Sizes (environment variables): MINUTES of the dcase-disjoint stand-in (60, its full size); Table 3: T3_EPOCHS epochs
# of T3_STEPS steps for the schedules that train both tasks on every step (SoftMTL, CrossSoftMTL), twice the epochs for
# those that train one task per step (HardMTL 1:1, FreezeMTL with first_epochs = T3_EPOCHS), so each task gets
# T3_EPOCHS x T3_STEPS steps in every arm; mean teacher: MT_EPOCHS epochs of MT_STEPS steps, ramp-up MT_RAMPUP epochs.
set -u
out=${1:?usage: tools/claims_sweeps.sh OUT [DEADLINE_S]}
deadline=${2:-36000}
minutes=${MINUTES:-60}; seeds=${SEEDS:-3}; jobs=${JOBS:-3}
t3_epochs=${T3_EPOCHS:-5}; t3_steps=${T3_STEPS:-67}
mt_epochs=${MT_EPOCHS:-20}; mt_steps=${MT_STEPS:-100}; mt_rampup=${MT_RAMPUP:-5}
mkdir -p "$out"
start=$(date +%s)
metrics=(--metric scene/accuracy --metric event/collar_f1/micro --metric event/segment_f1/micro
         --metric event/frame_micro_f1 --metric event/psds1)
common=(--grid seed=0 --seeds "$seeds" --jobs "$jobs" --threads 1 --set "data.minutes=$minutes"
        --set evaluate.plots=false "${metrics[@]}")
t3=("${common[@]}" --set "train.steps_per_epoch=$t3_steps")
mt=("${common[@]}" --set "train.epochs=$mt_epochs" --set "train.steps_per_epoch=$mt_steps"
    --set "schedule.rampup_epochs=$mt_rampup")

# The stand-in is generated once, before the runs that share it.
python - "$minutes" <<'PY'
import sys
from jasc_core.recipes.model import build, load_recipe
build("dataset", load_recipe("recipes/mt003_soft.yaml", [f"data.minutes={sys.argv[1]}"]).data).prepare()
PY
echo "data ready after $(( $(date +%s) - start )) s"

sweep() {  # NAME RECIPE ARGS...: a sweep, then the EMA teacher of each run that has one evaluated too
    local name=$1 recipe=$2; shift 2
    jasc sweep "$recipe" "$@" --out "$out/$name" > "$out/$name.log" 2>&1
    for run in "$out/$name"/runs/*/; do
        [ -f "$run/checkpoints/best.pt" ] || continue
        python -c "import sys, torch; sys.exit(0 if torch.load(sys.argv[1], map_location='cpu', weights_only=False).get('extra_models') else 1)" "$run/checkpoints/last.pt" 2>/dev/null \
            && jasc evaluate "$run" --model teacher >> "$out/$name.log" 2>&1
    done
}
two=$((2 * t3_epochs))
pids=()
sweep soft recipes/mt003_soft.yaml "${t3[@]}" --set "train.epochs=$t3_epochs" & pids+=($!)
sweep cross_soft recipes/mt003_cross_soft.yaml "${t3[@]}" --set "train.epochs=$t3_epochs" & pids+=($!)
sweep hard recipes/mt003_hard.yaml "${t3[@]}" --set "train.epochs=$two" & pids+=($!)
sweep cross_hard recipes/mt003_cross_hard.yaml "${t3[@]}" --set "train.epochs=$two" & pids+=($!)
sweep freeze_sed_asc recipes/mt003_freeze_sed_asc.yaml "${t3[@]}" --set "train.epochs=$two" \
    --set "schedule.first_epochs=$t3_epochs" & pids+=($!)
sweep freeze_asc_sed recipes/mt003_freeze_asc_sed.yaml "${t3[@]}" --set "train.epochs=$two" \
    --set "schedule.first_epochs=$t3_epochs" & pids+=($!)
sweep mean_teacher recipes/desed_crnn_sed_mean_teacher.yaml "${mt[@]}" & pids+=($!)
sweep strong_only recipes/desed_crnn_sed_mean_teacher.yaml "${mt[@]}" --set schedule.max_weight=0 \
    --set "train.streams=[strong]" & pids+=($!)
sweep strong_weak recipes/desed_crnn_sed_mean_teacher.yaml "${mt[@]}" --set schedule.max_weight=0 \
    --set "train.streams=[strong,weak]" & pids+=($!)

running() { local pid; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
while running && [ $(( $(date +%s) - start )) -lt "$deadline" ]; do sleep 5; done
if running; then
    echo "deadline ${deadline} s reached: stopping the runs still going (their epochs so far are in history.json)"
    pkill -TERM -f "jasc_core|jasc (run|sweep|evaluate)" ; sleep 10
fi
echo "all done after $(( $(date +%s) - start )) s"
python tools/claims_collect.py "$out" > "$out/results.json"
