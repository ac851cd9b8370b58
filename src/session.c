// SPDX-License-Identifier: GPL-2.0-or-later
/* One VM from start to stop, for `run` and `restore`, with its API socket. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "cli.h"
#include "config.h"
#include "console.h"
#include "kvm.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "session.h"
#include "snapshot/memimg.h"
#include "snapshot/snapshot.h"
#include "term.h"
#include "util.h"
#include "vcpu/vcpu.h"
#include "vm.h"

struct session {
	struct vm *vm; /* NULL between boots */
	pthread_mutex_t lock;
	uint64_t start_ns;
	bool compress;
	struct snapshot *snap; /* restore in progress (lazy) */
	struct vm *lazy_vm;    /* its VM: s->vm is NULL once the VM stopped */
	pthread_t lazy_thr;
	bool lazy_running;
	_Atomic bool lazy_cancelled; /* the VM stopped first: the rest of memory is not needed */
	struct api_server *api; /* its subscribers get the events; NULL: no API socket */
	bool stop_pending;	/* "stop" came before the VM was built: it stops at once */
};

/* --- events (docs/api.md) ------------------------------------------------------------------ */

static void vm_event_fn(void *ctx, const char *name, const char *data)
{
	struct session *s = ctx;

	api_server_event(s->api, name, data);
}

static void pause_event(struct session *s, bool paused, const char *reason)
{
	char data[64];

	snprintf(data, sizeof(data), "{\"reason\":\"%s\"}", reason);
	api_server_event(s->api, paused ? "paused" : "resumed", data);
}

/* save-progress: every 10% of guest memory written, and at the end. */
struct save_progress {
	struct session *s;
	const char *path_json;
	unsigned int next_pct;
};

static void save_progress_fn(void *ctx, uint64_t done, uint64_t total)
{
	struct save_progress *p = ctx;
	unsigned int pct = total ? (unsigned int)(done * 100 / total) : 100;
	char data[API_MSG_MAX];

	if (pct < p->next_pct)
		return;
	p->next_pct = pct / 10 * 10 + 10;
	snprintf(data, sizeof(data), "{\"path\":%s,\"done\":%llu,\"total\":%llu,\"percent\":%u}",
		 p->path_json, (unsigned long long)done, (unsigned long long)total, pct);
	api_server_event(p->s->api, "save-progress", data);
}

/* --- API ops (the API thread) ----------------------------------------------------------- */

static int api_pause(void *ctx)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	bool was;

	pthread_mutex_lock(&s->lock);
	if (s->vm) {
		was = s->vm->paused;
		ret = vm_pause(s->vm);
		if (!ret && !was)
			pause_event(s, true, "api");
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_resume(void *ctx)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	pthread_mutex_lock(&s->lock);
	if (s->vm) {
		if (s->vm->paused)
			pause_event(s, false, "api");
		vm_resume(s->vm);
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_save(void *ctx, const char *path, bool stop, bool raw, char *msg, size_t len)
{
	struct snapshot_save_opts o = { .compress = true };
	struct session *s = ctx;
	struct snapshot_result r = { 0 };
	char p[API_MSG_MAX / 2] = "";
	struct save_progress prog = { .s = s, .path_json = p };
	bool was_paused;
	int ret = -ESRCH;

	if (api_json_append_string(p, sizeof(p), path))
		snprintf(p, sizeof(p), "\"\"");
	pthread_mutex_lock(&s->lock);
	if (!s->vm)
		goto out;
	o.compress = s->compress && !raw;
	o.progress_fn = save_progress_fn;
	o.progress_ctx = &prog;
	was_paused = s->vm->paused;
	ret = vm_pause(s->vm);
	if (ret)
		goto out;
	if (!was_paused)
		pause_event(s, true, "save");
	ret = snapshot_save(s->vm, path, &o, &r);
	if (!ret) {
		snprintf(msg, len, "{\"path\":%s,\"bytes\":%llu,\"ms\":%llu,\"zero_pages\":%llu}",
			 p, (unsigned long long)r.bytes, (unsigned long long)(r.ns / 1000000),
			 (unsigned long long)r.zero_pages);
		pr_info("snapshot %s: %llu MiB in %.2f s", path,
			(unsigned long long)(r.bytes >> 20), r.ns / 1e9);
	} else {
		snprintf(msg, len, "saving %s: %s", path, strerror(-ret));
	}
	if (!ret && stop) {
		vm_request_stop(s->vm, VM_STOP_API, 0);
	} else if (!was_paused) {
		pause_event(s, false, "save");
		vm_resume(s->vm);
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_status(void *ctx, char *json, size_t len)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	pthread_mutex_lock(&s->lock);
	if (s->vm) {
		snprintf(json, len,
			 "{\"state\":\"%s\",\"vcpus\":%u,\"memory\":%llu,\"uptime_ms\":%llu}",
			 s->vm->paused ? "paused" : "running", s->vm->nr_vcpus,
			 (unsigned long long)s->vm->mem.total,
			 (unsigned long long)((now_ns() - s->start_ns) / 1000000));
		ret = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_stop(void *ctx)
{
	struct session *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (s->vm)
		vm_request_stop(s->vm, VM_STOP_API, 0);
	else
		s->stop_pending = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int api_vsock(void *ctx, uint32_t port, int *fd, char *msg, size_t len)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	pthread_mutex_lock(&s->lock);
	if (s->vm) {
		ret = vm_vsock_connect(s->vm, port, fd);
		if (ret == -ENODEV)
			snprintf(msg, len, "this VM has no vsock device ([vsock] cid)");
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_console(void *ctx, int *fd, char *msg, size_t len)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	pthread_mutex_lock(&s->lock);
	if (s->vm) {
		ret = s->vm->console_api ? console_api_attach(s->vm->console_api, fd) : -ENODEV;
		if (ret == -ENODEV)
			snprintf(msg, len,
				 "the console is not on the API ([console] serial = api)");
		else if (ret == -EBUSY)
			snprintf(msg, len, "another client is attached to the console");
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int api_balloon(void *ctx, bool set, uint64_t size, char *json, size_t len)
{
	struct session *s = ctx;
	int ret = -ESRCH;

	pthread_mutex_lock(&s->lock);
	if (s->vm)
		ret = vm_balloon_request(s->vm, set, size, json, len);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static const struct api_ops session_api = {
	.pause = api_pause,
	.resume = api_resume,
	.save = api_save,
	.status = api_status,
	.stop = api_stop,
	.vsock = api_vsock,
	.console = api_console,
	.balloon = api_balloon,
};

/* --- exit status ------------------------------------------------------------------------- */

static const char *const stop_names[] = {
	[VM_RUNNING] = "error",	     [VM_STOP_POWEROFF] = "poweroff",
	[VM_STOP_REBOOT] = "reboot", [VM_STOP_EXIT_PORT] = "exit-port",
	[VM_STOP_PANIC] = "panic",   [VM_STOP_TIMEOUT] = "timeout",
	[VM_STOP_SIGNAL] = "signal", [VM_STOP_USER] = "console",
	[VM_STOP_API] = "api",	     [VM_STOP_ERROR] = "error",
};

static void started_event(struct session *s, const struct vm *vm, bool restored)
{
	char data[128];

	snprintf(data, sizeof(data), "{\"vcpus\":%u,\"memory\":%llu,\"restored\":%s}", vm->nr_vcpus,
		 (unsigned long long)vm->mem.total, restored ? "true" : "false");
	api_server_event(s->api, "started", data);
}

/* What the guest did (exited, panicked, reset), then stopped unless it restarts. */
static void stop_events(struct session *s, enum vm_stop why, int code, int status, bool restart)
{
	char data[128];

	if (why == VM_STOP_EXIT_PORT) {
		snprintf(data, sizeof(data), "{\"status\":%d}", code);
		api_server_event(s->api, "guest-exited", data);
	} else if (why == VM_STOP_PANIC) {
		api_server_event(s->api, "guest-panicked", NULL);
	} else if (why == VM_STOP_REBOOT) {
		snprintf(data, sizeof(data), "{\"restart\":%s}", restart ? "true" : "false");
		api_server_event(s->api, "reset", data);
	}
	if (restart)
		return;
	snprintf(data, sizeof(data), "{\"reason\":\"%s\",\"exit_status\":%d}",
		 (unsigned int)why < ARRAY_SIZE(stop_names) && stop_names[why] ? stop_names[why]
									       : "error",
		 status);
	api_server_event(s->api, "stopped", data);
}

static int stop_status(enum vm_stop why, int code, int timeout_ms)
{
	switch (why) {
	case VM_STOP_POWEROFF:
		pr_info("guest powered off");
		return 0;
	case VM_STOP_REBOOT:
		pr_info("guest rebooted");
		return 0;
	case VM_STOP_EXIT_PORT:
		pr_info("guest exit port: status %d", code);
		return code;
	case VM_STOP_PANIC:
		pr_err("guest kernel panic (reported through pvpanic)");
		return EXIT_PANIC;
	case VM_STOP_TIMEOUT:
		pr_err("timeout: guest still running after %.3g s, stopped it",
		       timeout_ms / 1000.0);
		return EXIT_TIMEOUT;
	case VM_STOP_SIGNAL:
		pr_err("stopped by signal %s", strsignal(code));
		return 128 + code;
	case VM_STOP_USER:
		pr_info("stopped from the console");
		return 0;
	case VM_STOP_API:
		pr_info("stopped through the API socket");
		return 0;
	case VM_STOP_ERROR:
	case VM_RUNNING:
		break;
	}
	pr_err("the VM failed");
	return EXIT_VM_ERROR;
}

/* --- restore ------------------------------------------------------------------------------ */

/* Lazy restore: the rest of memory arrives while the guest runs; a bad chunk stops it. */
static void *lazy_fn(void *arg)
{
	struct session *s = arg;
	struct memimg_lazy_stats st;
	uint64_t t0;
	int ret;

	sandbox_thread_enter(SANDBOX_LAZY);
	t0 = now_ns();
	ret = snapshot_lazy_finish(s->snap);
	if (!ret)
		atomic_store(&s->lazy_vm->mem_filling, false);

	if (ret) {
		pr_err("lazy restore: %s: stopping the VM", strerror(-ret));
		vm_request_stop(s->lazy_vm, VM_STOP_ERROR, 0);
	} else if (atomic_load(&s->lazy_cancelled)) {
		pr_info("lazy restore: the VM stopped first; not read in after %.1f ms",
			(now_ns() - t0) / 1e6);
	} else {
		pr_info("lazy restore: all memory in after %.1f ms", (now_ns() - t0) / 1e6);
	}
	if (!snapshot_lazy_stats(s->snap, &st))
		pr_debug("lazy restore: %llu first touches served (%llu of zero pages, %llu "
			 "chunks read for them; %.1f ms, %.1f ms of it reading), %llu chunks "
			 "prefetched, of %llu",
			 (unsigned long long)st.faults, (unsigned long long)st.zero_faults,
			 (unsigned long long)st.fault_chunks, st.fault_ns / 1e6,
			 st.fault_read_ns / 1e6, (unsigned long long)st.prefetched,
			 (unsigned long long)st.chunks);
	return NULL;
}

/* The VM stopped: end the lazy restore without reading the rest of its memory. */
static void lazy_end(struct session *s)
{
	if (!s->lazy_running)
		return;
	atomic_store(&s->lazy_cancelled, true);
	snapshot_lazy_cancel(s->snap);
	pthread_join(s->lazy_thr, NULL);
	s->lazy_running = false;
}

static const char *const mem_modes[] = {
	[SNAPSHOT_MEM_EAGER] = "eager",
	[SNAPSHOT_MEM_LAZY] = "lazy: memory follows",
	[SNAPSHOT_MEM_MAP] = "mapped: memory from the file on first touch",
	[SNAPSHOT_MEM_CACHE] = "cached: memory from the memory cache on first touch",
};

static int restore(struct session *s, struct kvm_sys *kvm, const struct vm_config *cfg,
		   const struct session_opts *o, struct vm *vm)
{
	uint64_t t0 = now_ns(), t1;
	int ret;

	ret = vm_create_for_restore(vm, kvm, cfg);
	if (ret)
		return ret;
	/* Until the last chunk is in, a page given back would be filled again (lazy_fn). */
	atomic_store(&vm->mem_filling, o->mem == SNAPSHOT_MEM_LAZY);
	t1 = now_ns();
	ret = snapshot_restore(o->snap, vm, o->mem, true);
	/* A clone is another machine: a new generation ID, and the guest reseeds. */
	ret = ret ?: vm_vmgenid_new(vm, true);
	if (ret)
		return ret;
	/* Also the benchmark's time to the first guest instruction (bench/snapshot). */
	pr_info("restored %s in %.1f ms (%s; VM set-up %.1f ms, memory and state %.1f ms); "
		"%.1f ms since minivmm started",
		cfg->path ? cfg->path : "snapshot", (now_ns() - t0) / 1e6, mem_modes[o->mem],
		(t1 - t0) / 1e6, (now_ns() - t1) / 1e6, (now_ns() - minivmm_start_ns) / 1e6);
	if (o->mem == SNAPSHOT_MEM_LAZY) {
		s->snap = o->snap;
		s->lazy_vm = vm;
		ret = -pthread_create(&s->lazy_thr, NULL, lazy_fn, s);
		if (ret)
			return ret;
		s->lazy_running = true;
	}
	return 0;
}

/* --- the sandbox ------------------------------------------------------------------------- */

/* What this VM's threads will do, for their seccomp filters and capabilities. */
static void sandbox_plan_for(const struct vm_config *cfg, const struct session_opts *o,
			     const char *sock, struct sandbox_plan *p)
{
	unsigned int i;

	memset(p, 0, sizeof(*p));
	p->log_only = cfg->sandbox.seccomp == SANDBOX_SECCOMP_LOG;
	p->rebuild = cfg->on_reboot == REBOOT_RESTART;
	for (i = 0; i < CONFIG_MAX_SHARES; i++) {
		p->shares |= cfg->shares[i].path != NULL;
		p->fs_priv_xattr |= cfg->shares[i].path && cfg->shares[i].allow_priv_xattr;
	}
	p->lazy = o->snap && o->mem == SNAPSHOT_MEM_LAZY;
	p->api = sock != NULL;
	p->vsock = cfg->vsock.cid != 0;
	p->balloon = cfg->balloon.present;
	p->rng = cfg->rng;
	p->console_api = cfg->serial == SERIAL_API;
	p->console_tty = cfg->serial == SERIAL_STDIO && isatty(STDIN_FILENO);
	/* Root serving a share acts on files of every owner; a rebuild reopens them. */
	p->keep_fs_caps = p->shares || p->rebuild;
}

/* --- the loop ----------------------------------------------------------------------------- */

int session_run(const struct vm_config *cfg, const struct session_opts *o)
{
	const char *sock = o->api_socket ? o->api_socket : cfg->api_socket;
	struct session s = { .compress = o->compress };
	struct api_server *api = NULL;
	int sig_fd, ret, left = o->timeout_ms;
	uint64_t start = now_ns();
	struct kvm_probe_result probe;
	struct kvm_sys kvm;
	bool first = true;
	unsigned int boots = 0;
	enum vm_stop why;
	struct vm vm;

	if (cfg->serial == SERIAL_API && !sock) {
		pr_err(
		    "[console] serial = api needs a control socket ([api] socket or --api-socket)");
		kvm_probe_cancel(o->probe);
		return EXIT_USAGE;
	}
	pthread_mutex_init(&s.lock, NULL);
	sig_fd = console_signals_fd();
	vcpu_signals_init();
	/* A reader that goes away must not kill the VM: console writes just fail. */
	signal(SIGPIPE, SIG_IGN);
	ret = o->probe ? kvm_probe_finish(o->probe, &kvm, &probe) : kvm_sys_open(&kvm);
	if (ret) {
		ret = EXIT_VM_ERROR;
		goto out_sig;
	}
	/* Opening is not running: a software KVM (PVM) opens and fails deep into a boot. */
	if (o->probe ? probe.status : kvm_probe_guest(&kvm, &probe)) {
		kvm_explain_unusable(&probe);
		ret = EXIT_VM_ERROR;
		goto out_kvm;
	}
	pr_debug("KVM test guest ran in %.1f ms", probe.ns / 1e6);
	if (cfg->sandbox.seccomp) {
		struct sandbox_plan plan;

		sandbox_plan_for(cfg, o, sock, &plan);
		if (sandbox_start(&plan)) {
			ret = EXIT_VM_ERROR;
			goto out_kvm;
		}
	}
	if (sock && api_server_start(sock, &session_api, &s, &api)) {
		ret = EXIT_VM_ERROR;
		goto out_kvm;
	}
	s.api = api;
	if (cfg->serial == SERIAL_STDIO && isatty(STDIN_FILENO))
		term_raw_enter(STDIN_FILENO);
	pr_debug("KVM open after %.1f ms", (now_ns() - minivmm_start_ns) / 1e6);
	for (;;) {
		if (first && o->snap)
			ret = restore(&s, &kvm, cfg, o, &vm);
		else
			ret = vm_create(&vm, &kvm, cfg);
		first = false;
		/* Built: from here on the main thread does only what running it takes. */
		if (!ret)
			ret = sandbox_main_ready();
		if (ret) {
			if (s.lazy_running) {
				vm_request_stop(&vm, VM_STOP_ERROR, 0);
				lazy_end(&s);
			}
			vm_destroy(&vm);
			ret = EXIT_VM_ERROR;
			stop_events(&s, VM_STOP_ERROR, 0, ret, false);
			break;
		}
		vm.event = vm_event_fn;
		vm.event_ctx = &s;
		pthread_mutex_lock(&s.lock);
		s.vm = &vm;
		s.start_ns = now_ns();
		if (s.stop_pending)
			vm_request_stop(&vm, VM_STOP_API, 0);
		pthread_mutex_unlock(&s.lock);
		started_event(&s, &vm, o->snap && !boots);
		boots++;
		why = vm_run(&vm, left, sig_fd);
		/* The API thread may be in the middle of a save: it ends first. */
		pthread_mutex_lock(&s.lock);
		s.vm = NULL;
		pthread_mutex_unlock(&s.lock);
		ret = stop_status(why, vm.stop_code, o->timeout_ms);
		stop_events(&s, why, vm.stop_code, ret,
			    why == VM_STOP_REBOOT && cfg->on_reboot == REBOOT_RESTART);
		lazy_end(&s);
		vm_destroy(&vm);
		if (why != VM_STOP_REBOOT || cfg->on_reboot != REBOOT_RESTART)
			break;
		/* The timeout covers the whole run, restarts included. */
		if (o->timeout_ms > 0) {
			left = o->timeout_ms - (int)((now_ns() - start) / 1000000);
			if (left <= 0) {
				ret = stop_status(VM_STOP_TIMEOUT, 0, o->timeout_ms);
				stop_events(&s, VM_STOP_TIMEOUT, 0, ret, false);
				break;
			}
		}
		pr_info("restarting the guest ([vm] on_reboot = restart)");
	}
	term_restore();
	api_server_stop(api);
out_kvm:
	sandbox_stop();
	kvm_sys_close(&kvm);
out_sig:
	if (sig_fd >= 0)
		close(sig_fd);
	pthread_mutex_destroy(&s.lock);
	return ret;
}
