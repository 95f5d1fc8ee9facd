# shellcheck shell=bash
# Shared body of the tbx-train sbatch scripts (sourced; see scripts/train_*.sbatch).
#
# Outside a job (`bash scripts/train_tbx11k_1gpu.sbatch`) a script submits itself with options
# from TBX_* variables; inside a job it: picks the weights source on purpose and says why, runs
# `tbx-train plan` and stops when the plan is refused, runs training as `cmd & wait` with USR1/TERM
# forwarded (tbx-train saves a mid-epoch checkpoint and exits 75), continues the chain on 75,
# and runs `tbx-doctor hook` last on every path (trap EXIT).

tbx_say() { echo "[tbx-job] $*"; }

tbx_defaults() {
  TBX_ROOT=${TBX_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
  TBX_PYTHON=${TBX_PYTHON:-python3}
  TBX_DATA_ROOT=${TBX_DATA_ROOT:-$TBX_ROOT/data/TBX11K}
  TBX_OUTPUT_ROOT=${TBX_OUTPUT_ROOT:-$TBX_ROOT/outputs}
  TBX_ON_STOP=${TBX_ON_STOP:-resubmit}  # resubmit | requeue | none
  TBX_MAX_CHAIN=${TBX_MAX_CHAIN:-20}
  TBX_CHAIN_DEPTH=${TBX_CHAIN_DEPTH:-0}
  TBX_CPU_ONLY=${TBX_CPU_ONLY:-0}
  export TBX_ROOT TBX_PYTHON TBX_DATA_ROOT TBX_OUTPUT_ROOT TBX_ON_STOP TBX_MAX_CHAIN TBX_CPU_ONLY
}

# Submit SCRIPT with sbatch options built from TBX_LOG_DIR (logs), TBX_PARTITION, TBX_TIME,
# TBX_NODES, TBX_TASKS_PER_NODE, TBX_GPUS (per node), TBX_CPUS (per task) and TBX_CPU_ONLY; extra
# arguments go to sbatch first.
# Prints the job id.
tbx_submit() {
  local script=$1; shift
  local log_dir=${TBX_LOG_DIR:-logs}
  local opts=(--parsable --output "$log_dir/train_tbx11k_%j.out"
    --error "$log_dir/train_tbx11k_%j.err" "$@")
  [[ -n ${TBX_PARTITION:-} ]] && opts+=(--partition "$TBX_PARTITION")
  [[ -n ${TBX_TIME:-} ]] && opts+=(--time "$TBX_TIME")
  [[ -n ${TBX_NODES:-} ]] && opts+=(--nodes "$TBX_NODES")
  [[ -n ${TBX_TASKS_PER_NODE:-} ]] && opts+=(--ntasks-per-node "$TBX_TASKS_PER_NODE")
  [[ -n ${TBX_CPUS:-} ]] && opts+=(--cpus-per-task "$TBX_CPUS")
  if [[ $TBX_CPU_ONLY == 1 ]]; then
    opts+=(--gres=none)
  elif [[ -n ${TBX_GPUS:-} ]]; then
    opts+=(--gres "gpu:$TBX_GPUS")
  fi
  (cd "$TBX_ROOT" && mkdir -p "$log_dir" && sbatch "${opts[@]}" "$script")
}

# Decide where the weights come from; sets RESUME_ARGS, TBX_EXPECT (for the doctor) and prints
# the reason.
tbx_choose_source() {
  RESUME_ARGS=() TBX_EXPECT=resume
  if [[ -n ${TBX_RESUME:-} ]]; then
    tbx_say "Weights source: --resume $TBX_RESUME (TBX_RESUME given explicitly)"
    RESUME_ARGS=(--resume "$TBX_RESUME")
  elif [[ -n ${TBX_PREV_RUN_DIR:-} ]]; then
    local ckpt=$TBX_PREV_RUN_DIR/checkpoint.pth
    if [[ ! -f $ckpt ]]; then
      tbx_say "Chain broken: previous job ${TBX_PREV_JOB_ID:-?} left no $ckpt; not starting over"
      return 2
    fi
    tbx_say "Weights source: --resume $ckpt (job ${TBX_PREV_JOB_ID:-?} of this chain" \
      "stopped with exit 75 after saving it; chain link $TBX_CHAIN_DEPTH)"
    RESUME_ARGS=(--resume "$ckpt")
  else
    tbx_own_run_source
  fi
}

# A new job (or this job requeued): only its own run dir counts, plus pretrained weights.
tbx_own_run_source() {
  if [[ ${SLURM_RESTART_COUNT:-0} -gt 0 ]]; then
    tbx_say "Requeued (restart $SLURM_RESTART_COUNT): --resume auto uses this job's own" \
      "checkpoint in $RUN_DIR"
  else
    TBX_EXPECT=fresh
    tbx_say "New run in $RUN_DIR: no earlier run's checkpoint is used" \
      "(set TBX_RESUME=PATH to continue one)"
  fi
  RESUME_ARGS=(--resume auto)
  local pretrained=${TBX_PRETRAINED:-}
  if [[ -z $pretrained && -f $TBX_ROOT/weights/checkpoint0011_4scale.pth ]]; then
    pretrained=$TBX_ROOT/weights/checkpoint0011_4scale.pth
  fi
  # A named weights file that is missing stops the job: training on from random weights would
  # spend the allocation on a run that cannot reach the intended AP.
  local name
  for name in TBX_PRETRAINED TBX_BACKBONE_WEIGHTS; do
    if [[ -n ${!name:-} && ! -f ${!name} ]]; then
      tbx_say "Stopping: $name=${!name} does not exist; fix the path (or unset $name)"
      return 2
    fi
  done
  if [[ -n $pretrained ]]; then
    RESUME_ARGS+=(--pretrained "$pretrained")
    [[ $TBX_EXPECT == fresh ]] && TBX_EXPECT=pretrained
  else
    tbx_say "No pretrained weights (set TBX_PRETRAINED=PATH, e.g. checkpoint0011_4scale.pth)"
  fi
  if [[ -n ${TBX_BACKBONE_WEIGHTS:-} ]]; then
    RESUME_ARGS+=(--backbone-weights "$TBX_BACKBONE_WEIGHTS")
  elif [[ -z $pretrained ]]; then
    tbx_say "No ImageNet backbone either (set TBX_BACKBONE_WEIGHTS=PATH): a fresh run of a" \
      "frozen-stem preset is refused by the plan"
  fi
  return 0
}

# The tbx-train options shared by `plan` and `run` (ARGS).
tbx_build_args() {
  ARGS=(--preset "$TBX_PRESET" --data-root "$TBX_DATA_ROOT" --output-dir "$RUN_DIR"
    "${RESUME_ARGS[@]}")
  [[ -n ${TBX_EPOCHS:-} ]] && ARGS+=(--epochs "$TBX_EPOCHS")
  [[ $TBX_CPU_ONLY == 1 ]] && ARGS+=(--device cpu)
  local extra=()
  read -r -a extra <<< "${TBX_EXTRA_ARGS:-}"
  ARGS+=("${extra[@]}")
}

tbx_forward() {
  tbx_say "Received SIG$1 at $(date '+%F %T'): forwarding it to tbx-train (pid $TRAIN_PID)," \
    "which saves a checkpoint after the current step and exits 75"
  SIGNALLED=1
  STOP_SIGNAL=${STOP_SIGNAL:-$1}
  kill -s "$1" "$TRAIN_PID" 2>/dev/null || true
}

# Wait for TRAIN_PID through any number of trapped signals; sets TRAIN_RC.
tbx_wait() {
  local rc
  while true; do
    wait "$TRAIN_PID"; rc=$?
    kill -0 "$TRAIN_PID" 2>/dev/null && continue  # a trap interrupted wait; keep waiting
    if [[ $rc -gt 128 && $SIGNALLED == 1 ]]; then
      wait "$TRAIN_PID" 2>/dev/null; local again=$?
      [[ $again != 127 ]] && rc=$again  # the real status when wait was cut short
    fi
    break
  done
  TRAIN_RC=$rc
}

# How the job ended, in words; never claims success unless log.txt shows trained epochs.
tbx_verdict() {
  local trained=0
  [[ -f $RUN_DIR/log.txt ]] && trained=$(grep -c . "$RUN_DIR/log.txt")
  case $TRAIN_RC in
    0)
      if [[ $trained -gt 0 ]]; then
        tbx_say "Training completed successfully: $trained epoch(s) trained in this job" \
          "($RUN_DIR/log.txt)"
      else
        tbx_say "tbx-train exited 0 but $RUN_DIR/log.txt records no trained epoch:" \
          "NOT a successful training job"
        TRAIN_RC=1
      fi ;;
    75) tbx_say "Training stopped by signal after saving $RUN_DIR/checkpoint.pth (exit 75)" ;;
    3) tbx_say "Training refused by its run plan (exit 3); nothing was trained" ;;
    *) tbx_say "Training FAILED with exit code $TRAIN_RC ($trained epoch(s) in log.txt)" ;;
  esac
}

# Only SLURM's time-limit warning (USR1) continues the chain: a TERM first means scancel or
# preemption, and a cancelled job must not come back on its own.
tbx_continue_chain() {
  if [[ ${STOP_SIGNAL:-} != USR1 ]]; then
    tbx_say "Stopped by SIG${STOP_SIGNAL:-?} (scancel or preemption, not the time-limit warning):" \
      "not continuing; resume with TBX_RESUME=$RUN_DIR/checkpoint.pth"
  elif [[ $TBX_ON_STOP == none ]]; then
    tbx_say "TBX_ON_STOP=none: not continuing; resume with TBX_RESUME=$RUN_DIR/checkpoint.pth"
  elif (( TBX_CHAIN_DEPTH + 1 >= TBX_MAX_CHAIN )); then
    tbx_say "Chain limit TBX_MAX_CHAIN=$TBX_MAX_CHAIN reached: not resubmitting"
  elif [[ $TBX_ON_STOP == requeue ]]; then
    tbx_say "TBX_ON_STOP=requeue: job $SLURM_JOB_ID is requeued after the hook; it resumes" \
      "from $RUN_DIR/checkpoint.pth"
  elif [[ $TBX_ON_STOP == resubmit ]]; then
    local next
    next=$(TBX_PREV_RUN_DIR=$RUN_DIR TBX_PREV_JOB_ID=$SLURM_JOB_ID \
      TBX_CHAIN_DEPTH=$((TBX_CHAIN_DEPTH + 1)) TBX_RESUME='' \
      tbx_submit "$TBX_SCRIPT" --dependency="afterany:$SLURM_JOB_ID")
    tbx_say "Submitted job $next to continue from $RUN_DIR/checkpoint.pth" \
      "(starts when job $SLURM_JOB_ID has ended)"
  fi
}

tbx_on_exit() {
  local rc=$?
  # USR1 ignored, not reset: SLURM's warning can come while the hook runs (it is sent 120 s
  # before the limit even when training has just finished), and its default action would kill
  # this shell with 138 and fail a job that trained every epoch. TERM keeps its default: scancel.
  trap - EXIT TERM
  trap '' USR1
  [[ $rc == 75 ]] && tbx_continue_chain
  echo "End Time: $(date)"
  # TBX_DOCTOR_PROFILE: the expectations to judge this run by (default: TBX11K's, built in).
  "$TBX_PYTHON" -m tbx_doctor hook --expect "${TBX_EXPECT:-any}" \
    ${TBX_DOCTOR_PROFILE:+--profile "$TBX_DOCTOR_PROFILE"} \
    || tbx_say "tbx-doctor hook exited $?"
  if [[ $rc == 75 && ${STOP_SIGNAL:-} == USR1 && $TBX_ON_STOP == requeue ]] \
    && (( ${SLURM_RESTART_COUNT:-0} + 1 < TBX_MAX_CHAIN )); then
    scontrol requeue "$SLURM_JOB_ID"  # last: the job goes back to the queue with this id
  fi
  exit "$rc"
}

# After tbx-train has ended there is nothing left to stop: a late signal is noted, not forwarded.
tbx_late_signal() {
  tbx_say "Received SIG$1 after tbx-train ended (exit $TRAIN_RC): nothing to stop; ignored"
}

# Before training starts there is nothing to save: USR1 is noted, TERM ends the job.
tbx_early_signal() {
  tbx_say "Received SIG$1 before training started"
  [[ $1 == TERM ]] && exit 143
}

tbx_plan() {
  local out prc
  out=$("$TBX_PYTHON" -m tbx_train plan "${ARGS[@]}" 2>&1); prc=$?
  echo "$out"
  case $prc in
    0) return 0 ;;
    3) tbx_say "Job stopped before training: the run plan was refused (see 'Run plan refused'" \
         "above for why and the fix). Nothing was trained." ;;
    *) tbx_say "Job stopped before training: tbx-train plan exited $prc (bad option or input)" ;;
  esac
  return "$prc"
}

# Entry point of a job script: tbx_main LAUNCHER... (e.g. `srun --kill-on-bad-exit=0 --wait=120`, or none).
tbx_main() {
  tbx_defaults
  if [[ -z ${SLURM_JOB_ID:-} ]]; then
    tbx_submit "$TBX_SCRIPT"; exit $?
  fi
  cd "$TBX_ROOT" || exit 2
  [[ -n ${TBX_VENV:-} ]] && source "$TBX_VENV/bin/activate"
  RUN_DIR=$TBX_OUTPUT_ROOT/tbx11k_run_$SLURM_JOB_ID
  SIGNALLED=0 TRAIN_PID='' TRAIN_RC=0 STOP_SIGNAL=
  trap tbx_on_exit EXIT
  trap 'tbx_early_signal USR1' USR1
  trap 'tbx_early_signal TERM' TERM
  echo "Start Time: $(date)"
  tbx_say "Job $SLURM_JOB_ID on ${SLURM_JOB_NODELIST:-?}: preset $TBX_PRESET," \
    "world size $TBX_WORLD_SIZE, run dir $RUN_DIR"
  tbx_choose_source || exit $?
  tbx_build_args
  tbx_plan || exit $?
  trap 'tbx_forward USR1' USR1
  trap 'tbx_forward TERM' TERM
  "$@" "$TBX_PYTHON" -m tbx_train run "${ARGS[@]}" &
  TRAIN_PID=$!
  tbx_wait
  trap 'tbx_late_signal USR1' USR1
  trap 'tbx_late_signal TERM' TERM
  tbx_verdict
  exit "$TRAIN_RC"
}
