"""Typed SQLAlchemy tables, one concept per module; importing this registers them all on ``Base``."""

from models.tables.account import Account
from models.tables.balance_entry import BalanceEntry
from models.tables.balance_line import BalanceLine
from models.tables.balance_line_decision import BalanceLineDecision
from models.tables.balance_line_reversal import BalanceLineReversal
from models.tables.balance_rejection import BalanceRejection
from models.tables.base import Base, utcnow
from models.tables.bill_run import BillRun, BillRunFailure
from models.tables.invoice import Invoice
from models.tables.invoice_counter import InvoiceCounter
from models.tables.invoice_line import InvoiceLine
from models.tables.message_delivery import MessageDelivery
from models.tables.outbox import OutboxEvent
from models.tables.parked_message import ParkedMessage
from models.tables.processed_message import ProcessedMessage
from models.tables.rejection import Rejection
from models.tables.reversal_decision import ReversalDecision
from models.tables.subscription import Subscription
from models.tables.subscription_change import SubscriptionChange
from models.tables.webhook_delivery import WebhookDelivery

__all__ = [
    "Account",
    "BalanceEntry",
    "BalanceLine",
    "BalanceLineDecision",
    "BalanceLineReversal",
    "BalanceRejection",
    "Base",
    "BillRun",
    "BillRunFailure",
    "Invoice",
    "InvoiceCounter",
    "InvoiceLine",
    "MessageDelivery",
    "OutboxEvent",
    "ParkedMessage",
    "ProcessedMessage",
    "Rejection",
    "ReversalDecision",
    "Subscription",
    "SubscriptionChange",
    "WebhookDelivery",
    "utcnow",
]
