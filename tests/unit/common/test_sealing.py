import pytest

from contracts.sealing import SealBroken, new_key, seal, unseal


def test_seal_round_trip_and_no_plaintext_in_the_ciphertext() -> None:
    key = new_key()
    secret = "the launch code is ünïcødé 🚀".encode()
    sealed = seal(secret, key, associated=b"req-1")
    assert secret not in sealed.model_dump_json().encode()
    assert unseal(sealed, key, associated=b"req-1") == secret


def test_a_sealed_body_moved_to_another_request_does_not_open() -> None:
    key = new_key()
    sealed = seal(b"body", key, associated=b"req-1")
    with pytest.raises(SealBroken):
        unseal(sealed, key, associated=b"req-2")


def test_a_wrong_key_does_not_open() -> None:
    sealed = seal(b"body", new_key(), associated=b"req-1")
    with pytest.raises(SealBroken):
        unseal(sealed, new_key(), associated=b"req-1")
