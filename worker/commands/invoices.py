"""``billing invoices``: what was issued, as JSON or one line per invoice and line."""

from __future__ import annotations

import json

from jobs.invoice_listing import invoice_documents
from worker.commands import context


def print_invoices(account_id: str | None, limit: int, *, as_json: bool) -> int:
    documents = invoice_documents(context().sessions, account_id, limit)
    if as_json:
        print(json.dumps(documents, indent=2))
        return 0
    if not documents:
        print("no invoices yet")
    for document in documents:
        print(f"{document['number'] or '(numbered when published)'}  {document['account']}  {document['issue_date']}  "
              f"{document['total']} {document['currency']}")
        for line in document["lines"]:
            what = f"{line['period_start']} .. {line['period_end']}" if "period_start" in line else line["balance_line"]
            print(f"    {line['kind']:<10} {what:<26} {line['amount']:>12}")
    return 0
