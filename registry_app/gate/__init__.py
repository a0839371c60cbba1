"""The deploy gate: may this pipeline deploy this package?

* ``deployability`` (read, pure over loaded inputs): the rules, on ``review.state.verdict``;
* ``inputs`` (read): everything the rules need for a batch of packages, in constant queries;
* ``answers`` (read): the newest deployable version of a group, and one package's check;
* ``registry`` (read): groups and versions as the API lists them;
* ``evidence`` (pure): reasons and evidence;
* ``tokens`` (write): API tokens, created, checked and revoked.
"""

from __future__ import annotations
