#!/usr/bin/env bash
# scripts/machine.sh: one line naming this machine for benchmark reports:
# CPU model, family and clock, the kernel, and what makes its syscalls
# dear (page-table isolation, a PVM hypervisor), which decides much of
# pkid's plumbing cost. Used by bench.sh and vs-stepca.sh.
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
mhz=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | tr -d ' ' | cut -d. -f1)
line="$(nproc) cores, $model (family $family, $mhz MHz), kernel $(uname -r)"
grep -qw 'pti=on' /proc/cmdline && line="$line booted pti=on (every syscall switches page tables)"
grep -q ' pvm_irq_enable$' /proc/kallsyms 2>/dev/null &&
  line="$line, a PVM guest (dmesg: Hypervisor detected: PVM; its kernel runs deprivileged under a software hypervisor, so kernel entries and interrupts cost more than under hardware virtualization)"
echo "$line"
