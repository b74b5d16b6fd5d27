#!/bin/bash
# The system test's steps inside the VM. They only act and record; the host judges, from what
# lands in /var/log/system-test (read out of the disk image after poweroff):
#   1. the agent reaches READY under systemd
#   2. the emulator is killed mid-session and started again: the agent resumes or starts a
#      fresh session without being restarted
#   3. SIGUSR2 stalls the agent's event loop: systemd's watchdog restarts it
#   4. a spoken command is played into the loopback mic: the model's tool call switches the
#      lamp (gpio-sim line 17) and its spoken reply is recorded from the loopback speaker
#   5. systemctl stop: the lamp's line goes to its safe state
# and the agent's and the system's memory at steady state and after the reply (memory-*.txt).
# Every wait is bounded; a wait that runs out is recorded (timeout:NAME) and the steps go on,
# so the logs show how far each part got (only an agent that never starts ends them early).
set -u
out=/var/log/system-test
mkdir -p "$out"
unit=edge-agent.service
facts=/run/system-test
lamp_line=$(cat "$facts/lamp-line" 2>/dev/null || echo /nonexistent)
recorder=
# How many times longer than on the x86 VM this machine may take for anything (written by the
# host for the emulated aarch64 VM); every wait below is stretched by it.
slowness=$(cat /usr/local/share/system-test/slowness 2>/dev/null || echo 1)

mark() {  # a step boundary, in the journal (ordered with the agent's events) and steps.log
    logger -t system-test "step=$1"
    echo "$(cut -d' ' -f1 /proc/uptime) $1" >> "$out/steps.log"
    echo "system-test: $1"
}

show() {  # the unit's state as systemd sees it
    systemctl show -p ActiveState,SubState,Result,NRestarts,MainPID,StatusText "$unit" \
        > "$out/show-$1.txt"
}

lamp() {  # the lamp line's level, read back from gpio-sim's sysfs
    cat "$lamp_line" > "$out/lamp-$1.txt" 2>&1
}

agent_count() {  # how many times the agent's current and past runs logged event $1 (a regex)
    journalctl -q -b -u "$unit" -o cat | grep -cE "\"event\":\"($1)\""
}

wait_for() {  # wait_for SECONDS NAME COMMAND...: poll COMMAND until it succeeds
    local limit=$(($1 * slowness)) name=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            mark "timeout:$name"
            return 1
        fi
        sleep 0.5
    done
    mark "reached:$name"
}

agent_logged_more() {  # agent_logged_more EVENT_REGEX COUNT: logged more than COUNT times
    (($(agent_count "$1") > $2))
}

active_again_after() {  # active with a new main process and more restarts than before
    local state pid restarts
    state=$(systemctl show -P ActiveState "$unit")
    pid=$(systemctl show -P MainPID "$unit")
    restarts=$(systemctl show -P NRestarts "$unit")
    [[ $state == active && $pid != "$1" && $pid != 0 && $restarts -gt $2 ]]
}

unit_processes() {  # the unit's processes and threads, with where each waits in the kernel
    local pid task
    for pid in $(cat "/sys/fs/cgroup/system.slice/$unit/cgroup.procs" 2>/dev/null); do
        echo "== pid $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline")"
        grep -E '^(Name|State|PPid|Threads):' "/proc/$pid/status"
        for task in /proc/"$pid"/task/*; do
            echo "-- tid ${task##*/} $(cat "$task/comm") state=$(cut -d' ' -f3 "$task/stat")" \
                "wchan=$(cat "$task/wchan")"
            head -6 "$task/stack"
        done
    done > "$out/procs-$1.txt" 2>&1
}

memory() {  # the agent's memory (its smaps_rollup), its unit's and the system's, at step $1
    local pid
    pid=$(systemctl show -P MainPID "$unit")
    {
        echo "== smaps_rollup $pid"
        cat "/proc/$pid/smaps_rollup"
        echo "== meminfo"
        cat /proc/meminfo
        echo "== unit"
        systemctl show -p MemoryCurrent,MemoryPeak,MemoryHigh,MemoryMax "$unit"
    } > "$out/memory-$1.txt" 2>&1
}

is_active() {
    [[ $(systemctl show -P ActiveState "$unit") == active ]]
}

emulator_gone() {
    [[ $(systemctl show -P ActiveState edge-emulator.service) != @(active|deactivating) ]]
}

collect() {  # everything the host reads, whatever happened above
    if [[ -n $recorder ]]; then
        kill -INT "$recorder" 2>/dev/null
        wait "$recorder"
    fi
    mark collect
    cp /sys/kernel/tracing/trace "$out/gpio-trace.txt" 2>&1
    cat /sys/kernel/debug/gpio > "$out/gpio-chips.txt" 2>&1
    cp /etc/edge-agent/agent.toml "$out/agent.toml"
    systemctl cat "$unit" > "$out/unit.txt" 2>&1
    aplay -l > "$out/alsa-cards.txt" 2>&1
    systemctl --failed --no-legend > "$out/failed-units.txt" 2>&1
    mark done
    journalctl -q -b -o json > "$out/journal.json"
    journalctl -q -b -o short-monotonic > "$out/journal.txt"
    sync
}
trap collect EXIT
trap 'exit 1' TERM INT

mark start

# 1. READY: for a Type=notify unit "active" means READY=1 arrived.
wait_for 120 agent-active is_active || exit 1
show ready
wait_for 60 session-connected agent_logged_more session.connected 0
lamp at-start
# Steady state: the session live, the microphone streaming, a camera frame each second.
sleep 15
memory steady

# 2. The emulator dies mid-session and comes back.
before=$(agent_count 'session.resumed|session.fresh_start')
show before-emulator-kill
mark emulator-kill
systemctl kill --signal=SIGKILL edge-emulator.service
# kill returns once the signal is sent; a start before systemd has seen the process die is a
# no-op on a unit still active (an emulated CPU took 6 s to get there).
wait_for 30 emulator-gone emulator_gone
sleep 2
systemctl reset-failed edge-emulator.service
systemctl start edge-emulator.service
mark emulator-started
wait_for 90 session-back agent_logged_more 'session.resumed|session.fresh_start' "$before"
show after-emulator-restart

# 3. A stalled event loop: the watchdog (WatchdogSec=) must restart the service.
show before-stall
pid=$(systemctl show -P MainPID "$unit")
restarts=$(systemctl show -P NRestarts "$unit")
connected=$(agent_count session.connected)
mark stall
kill -USR2 "$pid"
wait_for 90 restarted-by-watchdog active_again_after "$pid" "$restarts"
show after-watchdog
wait_for 60 reconnected agent_logged_more session.connected "$connected"

# 4. The spoken command, the tool call and the spoken reply.
lamp before-command
actuated=$(agent_count tool.actuated)
arecord -q -D testspk -f S16_LE -r 24000 -c 1 -d $((90 * slowness)) "$out/reply.wav" &
recorder=$!
sleep 1
mark command-play
aplay -q -D testmic /usr/local/share/system-test/command.wav
mark command-played
wait_for 45 tool-actuated agent_logged_more tool.actuated "$actuated"
lamp after-tool
sleep $((8 * slowness))  # the reply is spoken after the function response: seconds of audio
kill -INT "$recorder"
wait "$recorder"
recorder=
mark reply-recorded
memory after-reply  # the reply has just been played
show before-stop
lamp before-stop

# 5. Stop: the lamp goes to its safe state before the agent lets go of the line.
unit_processes before-stop
mark stop
timeout $((60 * slowness)) systemctl stop "$unit" &
stopper=$!
# A stop still running after 6 s (it takes about one) is recorded while it hangs.
for _ in $(seq $((12 * slowness))); do
    [[ $(systemctl show -P ActiveState "$unit") == @(active|deactivating) ]] || break
    sleep 0.5
done
[[ $(systemctl show -P ActiveState "$unit") == deactivating ]] && unit_processes during-stop
wait "$stopper"
mark stopped
show after-stop
lamp after-stop
