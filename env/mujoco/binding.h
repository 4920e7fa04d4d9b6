// Thin C wrappers around MuJoCo 2.2.x for the Go binding. Every call into
// MuJoCo that can raise an error goes through one of these: each sets a
// thread-local jump target, so MuJoCo's error handler returns control here
// instead of exiting the process.
#ifndef MISMATCH_BINDING_H
#define MISMATCH_BINDING_H

#include <mujoco/mujoco.h>

enum {
	mmOK = 0,
	mmError = 1,    // MuJoCo raised an error; message from mmw_error
	mmUnstable = 2, // a step raised a warning that invalidates it
};

int mmw_install(void);
const char *mmw_error(void);
mjModel *mmw_load_xml(const char *xml, int len, char *err, int errsz);
mjModel *mmw_load_file(const char *path, char *err, int errsz);
mjData *mmw_make_data(const mjModel *m);
void mmw_delete_data(mjData *d);
void mmw_delete_model(mjModel *m);
int mmw_forward(const mjModel *m, mjData *d);
int mmw_step(const mjModel *m, mjData *d, const double *ctrl, int skip, int kinematics, int *warning);
int mmw_rollout(const mjModel *m, mjData *d, const double *ctrl, int horizon, int skip,
	const int *bodies, int nbody, const int *sites, int nsite, double *rec, int *warning, int *failed);
double mmw_total_mass(const mjModel *m);
int mmw_name2id(const mjModel *m, int type, const char *name);

#endif
