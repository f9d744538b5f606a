#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "daemon/statfsd.h"
#include "daemon/ved.h"
#include "router.h"

static const char *cgroup_layout(void)
{
        struct statfs sfs;

        if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
                return "v2";
        return "v1";
}

int route_host_get(struct api_request *req)
{
        struct ved *v = req->v;
        struct utsname uts;
        json_t *host;

        uname(&uts);
        host = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:i}, s:s, s:i, s:b, s:b}",
                         "version", VED_VERSION, "instance", v->cfg.instance, "hostname",
                         uts.nodename, "kernel", uts.release, "state_dir", v->cfg.state_dir,
                         "socket", v->cfg.socket_path, "cgroup", cgroup_layout(), "ves", "total",
                         ved_store_ve_count(&v->store, NULL), "running",
                         ved_store_ve_count(&v->store, "running"), "started_at", v->started_at,
                         "pid", (int)getpid(), "lxcfs", v->lxcfs_up, "statfsd", ved_statfsd_up());
        return api_respond_json(req, 200, host);
}
