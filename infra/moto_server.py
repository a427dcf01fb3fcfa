"""moto's server, with DynamoDB transactions made safe under concurrency and cheap on big tables.

moto 5.2.5's `transact_write_items` keeps a rollback copy by deep-copying the whole table once
per item of the transaction, without a lock. Two things follow that real DynamoDB never does:
a write to the same table from another request while it copies crashes the transaction with
`RuntimeError: dictionary changed size during iteration` (a 500), and a 100-item transaction
on a 20,000-item table copies two million items. Bestow writes 100-item transactions four at
a time (the order split), so the local stack serialises DynamoDB writes behind one lock and
rolls a failed transaction back by restoring only the items it touched; reads take the same
lock, so none sees a transaction half-applied.

    python moto_server.py -H 127.0.0.1 -p <port>     (the same arguments as moto_server)
"""

import copy
import sys
import threading
import types

from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_writes = threading.RLock()


def _serialised(method):
    def wrapper(*args, **kwargs):
        with _writes:
            return method(*args, **kwargs)

    wrapper.__name__ = method.__name__
    return wrapper


# Reads too: a query iterates the table's items, which a concurrent write would change under
# it, and must not see a transaction half-applied (or before its rollback).
for _name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

_original_transact = DynamoDBBackend.transact_write_items
# moto's own whole-table copy becomes a no-op: the rollback below restores what was touched.
_no_copy = types.SimpleNamespace(deepcopy=lambda value, memo=None: value)


def _key_of(backend, op):
    if "Key" in op:
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self, transact_items):
    with _writes:
        touched = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            try:
                key = _key_of(self, op)
                before = self.get_item(op["TableName"], key)
            except Exception:
                # moto itself reports a bad item (unknown table, missing key) as DynamoDB does.
                continue
            touched.append((op["TableName"], key, copy.deepcopy(before)))
        dynamodb_models.copy = _no_copy
        try:
            return _original_transact(self, transact_items)
        except Exception:
            for table_name, key, before in reversed(touched):
                table = self.get_table(table_name)
                if before is None:
                    if self.get_item(table_name, key) is not None:
                        hash_value, range_value = self.get_keys_value(table, key)
                        table.delete_item(hash_value, range_value)
                else:
                    table.put_item(before.to_json()["Attributes"])
            raise
        finally:
            dynamodb_models.copy = copy


DynamoDBBackend.transact_write_items = transact_write_items

if __name__ == "__main__":
    sys.exit(main())
