// SPDX-License-Identifier: GPL-2.0-or-later
/* minivmm check-kvm: what this host's KVM is, and whether it runs a stock guest. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "kvm.h"
#include "log.h"
#include "vcpu/cpuid.h"

static const char check_usage[] =
    "usage: minivmm check-kvm [-q]\n"
    "\n"
    "Open /dev/kvm (or $MINIVMM_KVM_DEV), print what it is (API version, CPU vendor,\n"
    "loaded KVM modules, PVM or not, the capabilities minivmm needs, nested\n"
    "virtualization) and run a tiny built-in test guest in 64-bit mode (CPUID,\n"
    "lock cmpxchg16b, an MMIO store, port I/O, HLT). `minivmm run` and `restore` run\n"
    "the same test guest before they build a VM.\n"
    "\n"
    "options:\n"
    "  -q, --quiet  print only the verdict line\n"
    "  -h, --help   this text\n"
    "\n"
    "exit status:\n"
    "  0  minivmm can run a stock Linux guest on this KVM\n"
    "  1  it cannot (no /dev/kvm, a capability missing, or the test guest failed:\n"
    "     e.g. PVM, a software KVM that runs only PVM-enabled guest kernels)\n"
    "  2  bad command line\n";

static void vendor_of(const struct kvm_cpuid2 *c, char out[13])
{
	unsigned int i;

	strcpy(out, "?");
	for (i = 0; i < c->nent; i++) {
		if (c->entries[i].function != 0)
			continue;
		memcpy(out, &c->entries[i].ebx, 4);
		memcpy(out + 4, &c->entries[i].edx, 4);
		memcpy(out + 8, &c->entries[i].ecx, 4);
		out[12] = 0;
	}
}

static void print_facts(const struct kvm_sys *k)
{
	struct kvm_host_facts f;
	char vendor[13];
	int ns;

	kvm_host_facts(&f);
	vendor_of(k->cpuid, vendor);
	printf("device:         %s, KVM API version %d\n", kvm_dev_path(), k->api_version);
	printf("CPU vendor:     %s; hardware virtualization in /proc/cpuinfo: %s\n", vendor,
	       f.virt ? f.virt : "none (no vmx or svm flag)");
	printf("KVM module:     %s%s%s%s\n", f.pvm ? "kvm_pvm " : "", f.kvm_amd ? "kvm_amd " : "",
	       f.kvm_intel ? "kvm_intel " : "",
	       f.pvm || f.kvm_amd || f.kvm_intel ? "" : "(none of kvm_amd, kvm_intel, kvm_pvm)");
	printf("PVM:            %s\n",
	       f.pvm ? "yes: a software KVM that runs only PVM-enabled guest kernels" : "no");
	printf("capabilities:   all %u that minivmm needs\n", kvm_nr_required_caps);
	ns = kvm_check_extension(k->fd, KVM_CAP_NESTED_STATE);
	printf("nested:         %s; nested state save/restore: %s\n",
	       cpuid_nested_supported(k->cpuid) ? "yes: guests can run their own KVM"
						: "no (no SVM/VMX in KVM's supported CPUID)",
	       ns > 0 ? "yes" : "no");
}

int cmd_check_kvm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct kvm_probe_result r;
	struct kvm_sys k;
	bool quiet = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(check_usage, stdout);
			return 0;
		default:
			fputs(check_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		pr_err("check-kvm takes no arguments (try minivmm check-kvm --help)");
		return EXIT_USAGE;
	}
	if (kvm_sys_open(&k)) {
		printf("verdict:        NO: %s cannot be used (above)\n", kvm_dev_path());
		return EXIT_VM_ERROR;
	}
	if (!quiet)
		print_facts(&k);
	kvm_probe_guest(&k, &r);
	if (!quiet)
		printf("test guest:     %s (%.1f ms)\n", r.status ? r.why : "ran correctly",
		       r.ns / 1e6);
	kvm_sys_close(&k);
	if (r.status) {
		printf("verdict:        NO: minivmm cannot run a stock Linux guest on %s\n",
		       kvm_dev_path());
		kvm_explain_unusable(&r);
		return EXIT_VM_ERROR;
	}
	printf("verdict:        OK: minivmm can run a stock Linux guest on %s\n", kvm_dev_path());
	return 0;
}
