/* --rate: a VE's bandwidth in both directions, through rtnetlink (libnl-route-3).
 *
 * Towards the VE, packets leave the host through the host-side veth: a tbf qdisc
 * at its root shapes them. From the VE, packets arrive on that veth; Linux can
 * shape only what it sends, and this kernel has no police action to drop at
 * ingress, so a netdev ingress chain after the VE's guard forwards each packet
 * the guard let through to an ifb device of the VE (ve_nft_rate_fwd()), whose
 * root tbf shapes it; ifb then hands it back to the stack as received on the
 * veth. (A mirred redirect on tc's ingress, as this did first, ran before the
 * guard, and what ifb handed back skipped it: a VE with --rate could send from
 * any address.)
 *
 * The ifb is named after the VE (ve_net_ifb_name()), so a teardown after a crash
 * finds it with nothing but the instance and the CTID. */
#include <errno.h>
#include <linux/pkt_sched.h>
#include <stdio.h>
#include <string.h>

#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "net.h"
#include "net_nl.h"
#include "nft.h"

static int nl_err(struct ve_netnl *nl, int ret)
{
        if (ret >= 0)
                return 0;
        if (nl->error > 0)
                return -nl->error;
        return ret == -NLE_EXIST ? -EEXIST : ret == -NLE_OBJ_NOTFOUND ? -ENOENT : -EIO;
}

/* A root tbf of rate bytes/s on ifindex, replacing whatever root qdisc is there.
 * The bucket holds 20 ms at the rate, at least 32 KiB (a few full-size frames);
 * the queue another 100 ms. */
static int set_tbf(struct ve_netnl *nl, int ifindex, uint64_t rate)
{
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        uint64_t bucket = rate / 50 > 32768 ? rate / 50 : 32768;
        int ret;

        if (q == NULL)
                return -ENOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(1, 0));
        ret = rtnl_tc_set_kind(TC_CAST(q), "tbf");
        if (ret == 0) {
                rtnl_qdisc_tbf_set_limit(q, (int)(bucket + rate / 10));
                rtnl_qdisc_tbf_set_rate(q, (int)rate, (int)bucket, 0);
                nl->error = 0;
                ret = nl_err(nl, rtnl_qdisc_add(nl->sk, q, NLM_F_CREATE | NLM_F_REPLACE));
        } else {
                ret = -EIO;
        }
        rtnl_qdisc_put(q);
        return ret;
}

static int del_qdisc(struct ve_netnl *nl, int ifindex, uint32_t parent)
{
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        int ret;

        if (q == NULL)
                return -ENOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), parent);
        nl->error = 0;
        ret = nl_err(nl, rtnl_qdisc_delete(nl->sk, q));
        rtnl_qdisc_put(q);
        /* The kernel answers ENOENT or EINVAL when there is no such qdisc. */
        return ret == -ENOENT || ret == -EINVAL ? 0 : ret;
}

/* The VE's ifb, made and brought up if missing; its ifindex. */
static int ensure_ifb(struct ve_netnl *nl, const char *name)
{
        int ret;

        ret = ve_netnl_ifindex(nl, name);
        if (ret == -ENODEV) {
                ret = ve_netnl_link_add(nl, name, "ifb");
                if (ret < 0 && ret != -EEXIST)
                        return ret;
                ret = ve_netnl_ifindex(nl, name);
        }
        if (ret < 0)
                return ret;
        return ve_netnl_link_up(nl, ret) < 0 ? -EIO : ret;
}

/* Remove the shaping of the veth (if it is there), the rate chain and the ifb.
 * The chain is made after the ifb and removed before it, so without an ifb there
 * is no chain to look for (a VE that never had a rate pays no nftables batch). */
static int clear_rate(struct ve_netnl *nl, const char *instance, const char *veth, const char *ifb,
                      struct ve_error *err)
{
        int idx, ret = 0, r;

        idx = ve_netnl_ifindex(nl, veth);
        if (idx > 0) {
                ret = del_qdisc(nl, idx, TC_H_ROOT);
                /* An ingress qdisc of ved before this chain existed. */
                r = del_qdisc(nl, idx, TC_H_INGRESS);
                ret = ret < 0 ? ret : r;
        }
        if (ret < 0)
                return ve_error_errno(err, -ret, "remove the qdiscs of %s", veth);
        idx = ve_netnl_ifindex(nl, ifb);
        if (idx <= 0)
                return 0;
        ret = ve_nft_rate_fwd(instance, veth, NULL, err);
        if (ret < 0)
                return ret;
        r = ve_netnl_link_del(nl, idx);
        if (!ve_netnl_missing(r) && r < 0)
                return ve_error_errno(err, -r, "delete %s", ifb);
        return 0;
}

int ve_net_rate_set(const char *instance, uint32_t ctid, unsigned int mbit, struct ve_error *err)
{
        _cleanup_netnl_ struct ve_netnl nl = { 0 };
        char veth[VE_NET_IFNAME_LEN], ifb[VE_NET_IFNAME_LEN];
        uint64_t rate = (uint64_t)mbit * 1000000 / 8;
        int ret, idx, ifb_idx;

        ret = ve_net_ifname(instance, ctid, veth, sizeof(veth), err);
        if (ret == 0)
                ret = ve_net_ifb_name(instance, ctid, ifb, sizeof(ifb), err);
        if (ret < 0)
                return ret;
        if (rate > INT32_MAX)
                return ve_error_set(err, VE_EINVAL_INPUT, "rate %u Mbit/s is above what tbf takes",
                                    mbit);
        ret = ve_netnl_open(&nl, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        if (mbit == 0) {
                ret = clear_rate(&nl, instance, veth, ifb, err);
                if (ret < 0)
                        return ve_error_prefix(err, "remove the rate limit of VE %u", ctid);
                return 0;
        }
        idx = ve_netnl_ifindex(&nl, veth);
        if (idx < 0)
                return ve_error_errno(err, -idx, "find interface %s", veth);
        ifb_idx = ensure_ifb(&nl, ifb);
        if (ifb_idx < 0)
                return ve_error_errno(err, -ifb_idx, "create ifb device %s", ifb);
        ret = set_tbf(&nl, idx, rate);
        if (ret == 0)
                ret = set_tbf(&nl, ifb_idx, rate);
        if (ret < 0)
                ve_error_errno(err, -ret, "set the qdiscs");
        /* The chain is made anew: an ifb re-made (a new start, a crash) has a new
         * ifindex. */
        if (ret == 0)
                ret = ve_nft_rate_fwd(instance, veth, ifb, err);
        if (ret < 0) {
                clear_rate(&nl, instance, veth, ifb, NULL);
                return ve_error_prefix(err, "limit VE %u to %u Mbit/s", ctid, mbit);
        }
        return 0;
}
