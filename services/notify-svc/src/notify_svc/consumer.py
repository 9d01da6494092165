"""What notify-svc consumes: every event on every topic, fanned out to the subscriptions that want it."""

from itsm_events.bus import Handler

from .delivery import DeliveryWorker
from .handlers import EventFanOut


def handlers(worker: DeliveryWorker) -> dict[str, Handler]:
    fan_out = EventFanOut(worker.enqueue)
    return {
        # "*" = all topics; notify's own itsm.notify.* events only reach subscriptions naming them
        "*": fan_out.on_any_event,
    }
