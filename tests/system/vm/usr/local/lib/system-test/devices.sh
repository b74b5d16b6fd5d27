#!/bin/sh
# Set up the system test's devices: the snd-aloop card "Loopback" and a gpio-sim chip of 32
# lines whose line 17 is the lamp (pulled up, as a relay board's input idles), and start
# tracing what gpiolib sets on any line. Facts go to /run/system-test for the test steps.
set -eu
facts=/run/system-test
mkdir -p "$facts"

modprobe snd-aloop index=0 id=Loopback pcm_substreams=2
modprobe gpio-sim

config=/sys/kernel/config
mountpoint -q "$config" || mount -t configfs configfs "$config"
sim=$config/gpio-sim/system-test
mkdir "$sim" "$sim/gpio-bank0" "$sim/gpio-bank0/line17"
echo 32 > "$sim/gpio-bank0/num_lines"
echo LAMP > "$sim/gpio-bank0/line17/name"
echo 1 > "$sim/live"
line=/sys/devices/platform/$(cat "$sim/dev_name")/$(cat "$sim/gpio-bank0/chip_name")/sim_gpio17
echo pull-up > "$line/pull"
echo "$line/value" > "$facts/lamp-line"
cat "$sim/gpio-bank0/chip_name" > "$facts/chip"

tracing=/sys/kernel/tracing
mountpoint -q "$tracing" || mount -t tracefs tracefs "$tracing"
echo 1 > "$tracing/events/gpio/enable"
echo 1 > "$tracing/tracing_on"

udevadm settle --timeout=30
ls -l /dev/gpiochip* /dev/snd/
