"""The reference holder (wallet) of the Digital Staff Passport (issue 7 item 6).

An adapter at the edge, for ``pasa wallet``: a local store (:mod:`.store`), an OpenID4VCI 1.0
client that collects credentials (:mod:`.issuance`), a status check (:mod:`.status`) and the
OpenID4VP 1.0 presentation side (:mod:`.presentation`). The cryptography is the pure core's
(:mod:`pasa.passport`); this package only speaks HTTP and keeps files.
"""

from pasa.wallet.errors import WalletError

__all__ = ["WalletError"]
