"""Hashes of the credentials [[web.users]] holds, and the command that makes them.

Passwords are kept as PBKDF2-SHA256 (slow on purpose); tokens are long random strings,
so their SHA-256 is enough. `python -m pacs.web.credentials` prompts for a password and
prints its `password_hash`; with `--token` it makes a token and prints it with its
`token_sha256`.
"""

import argparse
import base64
import getpass
import hashlib
import hmac
import secrets

ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256
_SCHEME = "pbkdf2_sha256"


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    """`pbkdf2_sha256$iterations$salt$hash`, salt and hash in base64."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    encode = base64.b64encode
    return f"{_SCHEME}${iterations}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` was made from (constant-time comparison)."""
    scheme, iterations, salt, expected = hashed.split("$")
    if scheme != _SCHEME:
        return False
    salt_bytes = base64.b64decode(salt)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, int(iterations))
    return hmac.compare_digest(digest, base64.b64decode(expected))


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pacs.web.credentials", description="Make a credential for [[web.users]]."
    )
    parser.add_argument("--token", action="store_true", help="make a bearer token")
    args = parser.parse_args(argv)
    if args.token:
        token = secrets.token_urlsafe(32)
        print(f"token (give it to the client): {token}")
        print(f'token_sha256 = "{token_sha256(token)}"')
        return
    password = getpass.getpass("password: ")
    if password != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    print(f'password_hash = "{hash_password(password)}"')


if __name__ == "__main__":
    main()
