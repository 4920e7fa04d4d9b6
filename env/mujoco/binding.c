//go:build cgo

#include "binding.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The current jump target and last messages of this thread. A cgo call
// runs on one OS thread from start to end, so thread-local state is the
// call's own.
static __thread jmp_buf *mm_jump;
static __thread char mm_err[1024];

static void mm_on_error(const char *msg) {
	snprintf(mm_err, sizeof mm_err, "%s", msg);
	if (mm_jump) {
		longjmp(*mm_jump, 1);
	}
	// Unreachable through the Go binding, which wraps every call; MuJoCo
	// would go on after a returning handler, so stop here.
	fprintf(stderr, "mismatch: MuJoCo error outside a guarded call: %s\n", msg);
	abort();
}

// Warnings are detected from mjData's counters after each call; the text is
// dropped so nothing is printed or written to MUJOCO_LOG.TXT.
static void mm_on_warning(const char *msg) { (void)msg; }

int mmw_install(void) {
	mju_user_error = mm_on_error;
	mju_user_warning = mm_on_warning;
	return mj_version();
}

const char *mmw_error(void) { return mm_err; }

static mjModel *load(const char *name, const mjVFS *vfs, char *err, int errsz) {
	jmp_buf jb;
	jmp_buf *prev = mm_jump;
	mjModel *volatile m = NULL;
	mm_jump = &jb;
	if (setjmp(jb) == 0) {
		m = mj_loadXML(name, vfs, err, errsz);
	} else {
		snprintf(err, errsz, "%s", mm_err);
		m = NULL;
	}
	mm_jump = prev;
	return m;
}

mjModel *mmw_load_xml(const char *xml, int len, char *err, int errsz) {
	// mjVFS holds 2000 file names of 1000 bytes: too big for the stack.
	mjVFS *vfs = malloc(sizeof(mjVFS));
	if (!vfs) {
		snprintf(err, errsz, "out of memory for the virtual file system");
		return NULL;
	}
	mj_defaultVFS(vfs);
	if (mj_makeEmptyFileVFS(vfs, "model.xml", len) != 0) {
		free(vfs);
		snprintf(err, errsz, "cannot add the model to the virtual file system");
		return NULL;
	}
	int i = mj_findFileVFS(vfs, "model.xml");
	memcpy(vfs->filedata[i], xml, len);
	mjModel *m = load("model.xml", vfs, err, errsz);
	mj_deleteVFS(vfs);
	free(vfs);
	return m;
}

mjModel *mmw_load_file(const char *path, char *err, int errsz) { return load(path, NULL, err, errsz); }

mjData *mmw_make_data(const mjModel *m) {
	jmp_buf jb;
	jmp_buf *prev = mm_jump;
	mjData *volatile d = NULL;
	mm_jump = &jb;
	if (setjmp(jb) == 0) {
		d = mj_makeData(m);
	}
	mm_jump = prev;
	return d;
}

void mmw_delete_data(mjData *d) { mj_deleteData(d); }
void mmw_delete_model(mjModel *m) { mj_deleteModel(m); }

int mmw_forward(const mjModel *m, mjData *d) {
	jmp_buf jb;
	jmp_buf *prev = mm_jump;
	mm_jump = &jb;
	if (setjmp(jb)) {
		mm_jump = prev;
		mj_resetData(m, d);
		return mmError;
	}
	mj_forward(m, d);
	mm_jump = prev;
	return mmOK;
}

// The warnings after which a step's result cannot be trusted: MuJoCo resets
// the data on bad numbers, and drops contacts or constraints when full.
static const int mm_fatal[] = {mjWARN_BADQPOS, mjWARN_BADQVEL, mjWARN_BADQACC, mjWARN_BADCTRL,
	mjWARN_CONTACTFULL, mjWARN_CNSTRFULL};
#define MM_NFATAL ((int)(sizeof mm_fatal / sizeof mm_fatal[0]))

static int fatal_warning(const mjData *d, const int *before) {
	for (int i = 0; i < MM_NFATAL; i++) {
		if (d->warning[mm_fatal[i]].number != before[i]) {
			return mm_fatal[i];
		}
	}
	return -1;
}

// step advances skip substeps with the given controls; with kinematics set
// it then updates positions (xpos, site_xpos) to the final state, which
// mj_step leaves one substep behind.
static int step(const mjModel *m, mjData *d, const double *ctrl, int skip, int kinematics, int *warning) {
	int before[MM_NFATAL];
	for (int i = 0; i < MM_NFATAL; i++) {
		before[i] = d->warning[mm_fatal[i]].number;
	}
	memcpy(d->ctrl, ctrl, sizeof(mjtNum) * m->nu);
	for (int i = 0; i < skip; i++) {
		mj_step(m, d);
	}
	if (kinematics) {
		mj_kinematics(m, d);
	}
	int w = fatal_warning(d, before);
	if (w >= 0) {
		*warning = w;
		return mmUnstable;
	}
	return mmOK;
}

int mmw_step(const mjModel *m, mjData *d, const double *ctrl, int skip, int kinematics, int *warning) {
	jmp_buf jb;
	jmp_buf *prev = mm_jump;
	mm_jump = &jb;
	if (setjmp(jb)) {
		mm_jump = prev;
		mj_resetData(m, d);
		return mmError;
	}
	int r = step(m, d, ctrl, skip, kinematics, warning);
	mm_jump = prev;
	return r;
}

// mmw_rollout runs horizon environment steps of skip substeps each, with
// controls ctrl (horizon×nu), and after each writes a record of
// qpos, qvel, the positions of the listed bodies and of the listed sites
// into rec. On failure *failed is the step that failed.
int mmw_rollout(const mjModel *m, mjData *d, const double *ctrl, int horizon, int skip,
	const int *bodies, int nbody, const int *sites, int nsite, double *rec, int *warning, int *failed) {
	int width = m->nq + m->nv + 3 * nbody + 3 * nsite;
	volatile int h = 0;
	jmp_buf jb;
	jmp_buf *prev = mm_jump;
	mm_jump = &jb;
	if (setjmp(jb)) {
		mm_jump = prev;
		*failed = h;
		mj_resetData(m, d);
		return mmError;
	}
	for (; h < horizon; h++) {
		int r = step(m, d, ctrl + (long)h * m->nu, skip, nbody + nsite > 0, warning);
		if (r != mmOK) {
			mm_jump = prev;
			*failed = h;
			return r;
		}
		double *out = rec + (long)h * width;
		memcpy(out, d->qpos, sizeof(mjtNum) * m->nq);
		out += m->nq;
		memcpy(out, d->qvel, sizeof(mjtNum) * m->nv);
		out += m->nv;
		for (int b = 0; b < nbody; b++, out += 3) {
			memcpy(out, d->xpos + 3 * bodies[b], 3 * sizeof(mjtNum));
		}
		for (int s = 0; s < nsite; s++, out += 3) {
			memcpy(out, d->site_xpos + 3 * sites[s], 3 * sizeof(mjtNum));
		}
	}
	mm_jump = prev;
	return mmOK;
}

double mmw_total_mass(const mjModel *m) { return mj_getTotalmass(m); }
int mmw_name2id(const mjModel *m, int type, const char *name) { return mj_name2id(m, type, name); }
