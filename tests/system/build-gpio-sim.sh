#!/bin/sh
# Build the gpio-sim kernel module out of tree for Debian's kernel KVER, and speak the test's
# command into a WAV file. Runs inside the builder root (the VM's base root plus gcc, make,
# linux-headers-KVER and espeak-ng); SRC_DIR holds the three files below from the matching
# linux-source-X.Y (the host takes them out of its archive: xz is slow under emulation).
#   build-gpio-sim.sh KVER OUT_DIR "spoken command" SRC_DIR
#
# Debian's kernels are built without CONFIG_GPIO_SIM (and without CONFIG_IRQ_SIM, which it
# selects), so the module is made from three files of the matching kernel source:
# drivers/gpio/gpio-sim.c, its private header drivers/gpio/gpiolib.h, and kernel/irq/irq_sim.c
# linked into the same module. irq_sim.c calls handle_simple_irq(irq_to_desc(n)), and
# irq_to_desc is not exported to modules; generic_handle_irq(n) does the same and is.
set -eu
kver=$1
out=$2
command_text=$3
src=$4

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mod=$work/module
mkdir "$mod"
# A module made of several objects cannot share its name with one of them.
sed 's|"\.\./gpiolib\.h"|"gpiolib.h"|' "$src/drivers/gpio/gpio-sim.c" > "$mod/gpio_sim_main.c"
cp "$src/drivers/gpio/gpiolib.h" "$mod/"
objects=gpio_sim_main.o
if ! grep -q '^CONFIG_IRQ_SIM=y' "/usr/src/linux-headers-$kver/include/config/auto.conf"; then
    sed 's/handle_simple_irq(irq_to_desc(\([^()]*\)))/generic_handle_irq(\1)/' \
        "$src/kernel/irq/irq_sim.c" > "$mod/irq_sim.c"
    if grep -q irq_to_desc "$mod/irq_sim.c"; then
        echo "irq_sim.c still calls irq_to_desc: the substitution no longer matches" >&2
        exit 1
    fi
    objects="$objects irq_sim.o"
fi
printf 'obj-m := gpio-sim.o\ngpio-sim-y := %s\n' "$objects" > "$mod/Kbuild"
make -s -C "/lib/modules/$kver/build" M="$mod" modules
mkdir -p "$out"
cp "$mod/gpio-sim.ko" "$out/gpio-sim.ko"
modinfo "$out/gpio-sim.ko" | grep -E '^(vermagic|depends):'

espeak-ng -v en-us -s 150 -w "$out/command.wav" "$command_text"
