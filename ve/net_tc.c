/* --rate: a VE's bandwidth in both directions, through rtnetlink (libnl-route-3).
 *
 * Towards the VE, packets leave the host through the host-side veth: a tbf qdisc
 * at its root shapes them. From the VE, packets arrive on that veth; Linux can
 * shape only what it sends, and this kernel has no police action to drop at
 * ingress, so an ingress qdisc with a match-all u32 filter redirects (mirred) each
 * one to an ifb device of the VE, whose root tbf shapes it; ifb then hands it back
 * to the stack as received on the veth (the guard of nft.h still sees it).
 *
 * The ifb is named after the VE (ve_net_ifb_name()), so a teardown after a crash
 * finds it with nothing but the instance and the CTID. */
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <stdio.h>
#include <string.h>

#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "net.h"
#include "net_nl.h"

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

static int add_ingress(struct ve_netnl *nl, int ifindex)
{
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        int ret;

        if (q == NULL)
                return -ENOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_INGRESS);
        rtnl_tc_set_handle(TC_CAST(q), TC_HANDLE(0xffff, 0));
        ret = rtnl_tc_set_kind(TC_CAST(q), "ingress");
        nl->error = 0;
        ret = ret < 0 ? -EIO : nl_err(nl, rtnl_qdisc_add(nl->sk, q, NLM_F_CREATE | NLM_F_EXCL));
        rtnl_qdisc_put(q);
        return ret;
}

/* Everything arriving on ifindex goes to the ifb: u32 matching any packet,
 * with a mirred egress redirect that steals it. */
static int add_redirect(struct ve_netnl *nl, int ifindex, int ifb)
{
        struct rtnl_cls *cls = rtnl_cls_alloc();
        struct rtnl_act *act = rtnl_act_alloc();
        int ret = -ENOMEM;

        if (cls == NULL || act == NULL)
                goto out;
        rtnl_tc_set_ifindex(TC_CAST(cls), ifindex);
        rtnl_tc_set_parent(TC_CAST(cls), TC_HANDLE(0xffff, 0));
        rtnl_cls_set_protocol(cls, ETH_P_ALL);
        rtnl_cls_set_prio(cls, 1);
        ret = -EIO;
        if (rtnl_tc_set_kind(TC_CAST(cls), "u32") < 0 ||
            rtnl_tc_set_kind(TC_CAST(act), "mirred") < 0)
                goto out;
        rtnl_mirred_set_action(act, TCA_EGRESS_REDIR);
        rtnl_mirred_set_policy(act, TC_ACT_STOLEN);
        rtnl_mirred_set_ifindex(act, (uint32_t)ifb);
        /* A key matching anything; "terminal" makes the match run the action (a
         * non-terminal node would only lead on to another hash table). */
        if (rtnl_u32_add_key_uint32(cls, 0, 0, 0, 0) < 0 || rtnl_u32_set_cls_terminal(cls) < 0 ||
            rtnl_u32_add_action(cls, act) < 0)
                goto out;
        nl->error = 0;
        ret = nl_err(nl, rtnl_cls_add(nl->sk, cls, NLM_F_CREATE | NLM_F_EXCL));
out:
        if (act != NULL)
                rtnl_act_put(act);
        if (cls != NULL)
                rtnl_cls_put(cls);
        return ret;
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

/* Remove the shaping of the veth (if it is there) and the ifb. */
static int clear_rate(struct ve_netnl *nl, const char *veth, const char *ifb)
{
        int idx, ret = 0, r;

        idx = ve_netnl_ifindex(nl, veth);
        if (idx > 0) {
                ret = del_qdisc(nl, idx, TC_H_ROOT);
                r = del_qdisc(nl, idx, TC_H_INGRESS);
                ret = ret < 0 ? ret : r;
        }
        idx = ve_netnl_ifindex(nl, ifb);
        if (idx > 0) {
                r = ve_netnl_link_del(nl, idx);
                if (!ve_netnl_missing(r) && ret == 0)
                        ret = r;
        }
        return ret;
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
                ret = clear_rate(&nl, veth, ifb);
                if (ret < 0)
                        return ve_error_errno(err, -ret, "remove the rate limit of VE %u", ctid);
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
        /* The redirect is made anew: an ifb re-made after a crash has a new ifindex. */
        if (ret == 0)
                ret = del_qdisc(&nl, idx, TC_H_INGRESS);
        if (ret == 0)
                ret = add_ingress(&nl, idx);
        if (ret == 0)
                ret = add_redirect(&nl, idx, ifb_idx);
        if (ret < 0) {
                clear_rate(&nl, veth, ifb);
                return ve_error_errno(err, -ret, "limit VE %u to %u Mbit/s", ctid, mbit);
        }
        return 0;
}
