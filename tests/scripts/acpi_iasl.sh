#!/bin/sh
# Disassemble minivmm's ACPI tables with ACPICA's iasl: no errors, and the
# things Linux needs are there (_S5_, the PNP0A03 host bridge and its windows,
# the HW-reduced sleep/reset registers).
set -eu
cd "$(dirname "$0")/../.."

if ! command -v iasl >/dev/null 2>&1; then
	echo "acpi_iasl: installing acpica-tools for iasl"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
		acpica-tools >/dev/null || { echo "acpi_iasl: FAIL: cannot install acpica-tools"; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "acpi_iasl: FAIL: $*"; exit 1; }

# Build the dump tool straight from the ACPI sources so that unrelated,
# half-finished library objects cannot break this test.
${CC:-cc} -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -o "$tmp/acpi-dump" \
	tests/acpi/dump.c src/acpi/acpi.c src/acpi/aml.c || fail "cannot build tests/acpi/dump.c"

for ncpus in 1 2 64; do
	d="$tmp/$ncpus"
	mkdir -p "$d"
	# 6 GiB of RAM: 2 GiB above 4 GiB, so the 64-bit window starts at 7 GiB.
	# With the VM generation ID device except for 1 CPU (both kinds are checked below).
	gen=vmgenid
	[ "$ncpus" = 1 ] && gen=""
	"$tmp/acpi-dump" "$d" "$ncpus" 0x1c0000000 $gen >/dev/null || fail "acpi-dump $ncpus"
	# iasl 20200925 cannot disassemble a lone RSDP (no table header); the
	# unit test checks both of its checksums instead.
	[ -s "$d/RSDP.dat" ] || fail "RSDP missing"
	for sig in XSDT RSDT FACP APIC DSDT; do
		[ -s "$d/$sig.dat" ] || fail "$sig missing ($ncpus cpus)"
		(cd "$d" && iasl -d "$sig.dat" >"$sig.log" 2>&1) || {
			cat "$d/$sig.log"
			fail "iasl -d $sig.dat ($ncpus cpus)"
		}
		[ -s "$d/$sig.dsl" ] || fail "no $sig.dsl"
		# iasl -d reports bad checksums and malformed fields as warnings/errors.
		if grep -Eiq 'error|warning|invalid|incorrect' "$d/$sig.dsl" "$d/$sig.log"; then
			grep -Ei 'error|warning|invalid|incorrect' "$d/$sig.dsl" "$d/$sig.log"
			fail "iasl complains about $sig ($ncpus cpus)"
		fi
	done

	n=$(grep -c 'Subtable Type : 00 \[Processor Local APIC\]' "$d/APIC.dsl" || true)
	[ "$n" = "$ncpus" ] || fail "MADT has $n local APICs, want $ncpus"
done

d="$tmp/2"
dsl="$d/DSDT.dsl"
grep -q '_S5_' "$dsl" || fail "no _S5_"
grep -q 'Name (\\_S5, Package (0x04)' "$dsl" || fail "no _S5_ package"
grep -q 'EisaId ("PNP0A03")' "$dsl" || fail "no PNP0A03"
grep -q 'Device (_SB.PCI0)\|Device (PCI0)' "$dsl" || fail "no PCI0 device"
grep -q 'WordBusNumber' "$dsl" || fail "no bus range"
grep -q 'IO (Decode16' "$dsl" || fail "no 0xCF8 IO"
grep -q 'WordIO' "$dsl" || fail "no I/O window"
grep -q 'DWordMemory' "$dsl" || fail "no 32-bit window"
grep -q 'QWordMemory' "$dsl" || fail "no 64-bit window"
# The 64-bit window: 7 GiB .. 7 GiB + 64 GiB - 1.
grep -qi '0x00000001C0000000' "$dsl" || fail "QWordMemory minimum"
grep -qi '0x00000011BFFFFFFF' "$dsl" || fail "QWordMemory maximum"
grep -qi '0x0000001000000000, // Length' "$dsl" || fail "QWordMemory length"

# The VM generation ID and the generic event device that signals its changes.
grep -q 'Device (VGEN)\|Device (_SB.VGEN)' "$dsl" || fail "no VGEN device"
grep -q 'Name (_HID, "VMGENCTR")' "$dsl" || fail "no VMGENCTR _HID"
grep -A4 'Name (ADDR, Package (0x02)' "$dsl" | grep -qi '0x000FE000' || fail "VGEN ADDR"
grep -q 'Name (_HID, "ACPI0013"' "$dsl" || fail "no generic event device"
grep -A3 'IRQNoFlags' "$dsl" | grep -q '{5}' || fail "GED interrupt is not IRQ 5"
grep -q 'Method (_EVT, 1' "$dsl" || fail "no _EVT method"
grep -q 'Notify (\\_SB.VGEN, 0x80)\|Notify (VGEN, 0x80)' "$dsl" || fail "_EVT does not notify VGEN"
! grep -q 'VGEN\|ACPI0013' "$tmp/1/DSDT.dsl" || fail "VGEN without vmgenid"

fadt="$d/FACP.dsl"
grep -q 'Hardware Reduced (V5) : 1' "$fadt" || fail "not HW-reduced"
grep -q 'Reset Register Supported (V2) : 1' "$fadt" || fail "no reset register flag"
# The address line follows its GAS header (Space ID, widths: 5 lines).
grep -A5 'Sleep Control Register :' "$fadt" | grep -q 'Address : 0000000000000600' ||
	fail "sleep control register"
grep -A5 'Sleep Status Register :' "$fadt" | grep -q 'Address : 0000000000000601' ||
	fail "sleep status register"
grep -A5 'Sleep Control Register :' "$fadt" | grep -q 'Space ID : 01 \[SystemIO\]' ||
	fail "sleep control register space"
grep -A5 'Reset Register :' "$fadt" | grep -q 'Address : 0000000000000CF9' ||
	fail "reset register"
grep -qi 'Value to cause reset : 06' "$fadt" || fail "reset value"
# "MINIVMM " read as a little-endian UINT64.
grep -q 'Hypervisor ID : 204D4D56494E494D' "$fadt" || fail "hypervisor id"
echo "acpi_iasl: ok (ncpus 1 2 64)"
