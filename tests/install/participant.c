/* participant.c - A participant built outside this tree against the installed
 * libsaga: it subscribes to order.placed, logs each order and emits
 * probe.cleared for it. tests/install/run.sh builds it twice, with pkg-config
 * and with find_package(saga), and test_install runs it with the fleet. */
#include <saga/saga.h>

static saga_status on_placed(saga_ctx *ctx, const saga_event *ev, void *udata)
{
    (void)udata;
    saga_ctx_log(ctx, SAGA_LOG_INFO, "event=order_seen producer=%s", ev->producer);
    /* An empty ParticipantCleared: a clearance names its sender by its type. */
    return saga_ctx_emit(ctx, "probe.cleared", ev->order_id, 1, NULL, 0);
}

static saga_status setup(saga_service *svc, const saga_config *cfg, void *udata)
{
    (void)cfg;
    (void)udata;
    return saga_service_subscribe(svc, "order.placed", on_placed, NULL);
}

int main(int argc, char **argv)
{
    return saga_app_main("probe", "clears every order it sees (install test)", NULL, argc, argv,
                         setup, NULL);
}
