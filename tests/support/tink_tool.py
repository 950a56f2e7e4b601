"""Real Google Tink for coffer's interoperability tests.

    tink_tool.py create-keyset TEMPLATE OUT     write a cleartext JSON keyset (like tinkey)
    tink_tool.py decrypt KEYSET CT_HEX AAD_HEX  print the plaintext (hex)
    tink_tool.py encrypt KEYSET PT_HEX AAD_HEX  print the ciphertext (hex)
    tink_tool.py primary-id KEYSET              print the primary key id
"""

import io
import sys

import tink
from tink import aead, cleartext_keyset_handle

aead.register()

TEMPLATES = {
    "AES128_GCM": aead.aead_key_templates.AES128_GCM,
    "AES256_GCM": aead.aead_key_templates.AES256_GCM,
}


def read(path):
    with open(path) as f:
        return cleartext_keyset_handle.read(tink.JsonKeysetReader(f.read()))


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "create-keyset":
        handle = tink.new_keyset_handle(TEMPLATES[argv[2]])
        out = io.StringIO()
        cleartext_keyset_handle.write(tink.JsonKeysetWriter(out), handle)
        with open(argv[3], "w") as f:
            f.write(out.getvalue())
    elif command == "decrypt":
        primitive = read(argv[2]).primitive(aead.Aead)
        print(primitive.decrypt(bytes.fromhex(argv[3]), bytes.fromhex(argv[4])).hex())
    elif command == "encrypt":
        primitive = read(argv[2]).primitive(aead.Aead)
        print(primitive.encrypt(bytes.fromhex(argv[3]), bytes.fromhex(argv[4])).hex())
    elif command == "primary-id":
        print(read(argv[2]).keyset_info().primary_key_id)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
