"""The Track API-compatible HTTP edge (`trackbridge edge`): Track API requests in, envelopes on Kafka.

Each accepted request becomes exactly one spec §1 envelope on the input topic, and is answered 200
only once the broker has acknowledged it (acks=all). Requests the Track API itself would refuse
(unknown path or method, credentials that match no source, a body that is not JSON or is over its
endpoint's limit) are refused here, with the Track API's status, before anything is produced.
"""
