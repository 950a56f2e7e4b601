"""Real Google Tink for coffer's interoperability tests.

    tink_tool.py create-keyset TEMPLATE OUT     write a cleartext JSON keyset (like tinkey)
    tink_tool.py decrypt KEYSET CT_HEX AAD_HEX  print the plaintext (hex)
    tink_tool.py encrypt KEYSET PT_HEX AAD_HEX  print the ciphertext (hex)
    tink_tool.py primary-id KEYSET              print the primary key id
    tink_tool.py rotate KEYSET                  add an AES256_GCM key and make it primary
                                                (tinkey add-key + promote-key); print its id
    tink_tool.py delete-key KEYSET ID           delete a key (tinkey delete-key)
"""

import io
import sys

import tink
from tink import aead, cleartext_keyset_handle
from tink.testing import keyset_builder

aead.register()

TEMPLATES = {
    "AES128_GCM": aead.aead_key_templates.AES128_GCM,
    "AES256_GCM": aead.aead_key_templates.AES256_GCM,
}


def read(path):
    with open(path) as f:
        return cleartext_keyset_handle.read(tink.JsonKeysetReader(f.read()))


def write(path, handle):
    out = io.StringIO()
    cleartext_keyset_handle.write(tink.JsonKeysetWriter(out), handle)
    with open(path, "w") as f:
        f.write(out.getvalue())


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "create-keyset":
        write(argv[3], tink.new_keyset_handle(TEMPLATES[argv[2]]))
    elif command == "decrypt":
        primitive = read(argv[2]).primitive(aead.Aead)
        print(primitive.decrypt(bytes.fromhex(argv[3]), bytes.fromhex(argv[4])).hex())
    elif command == "encrypt":
        primitive = read(argv[2]).primitive(aead.Aead)
        print(primitive.encrypt(bytes.fromhex(argv[3]), bytes.fromhex(argv[4])).hex())
    elif command == "rotate":
        builder = keyset_builder.from_keyset_handle(read(argv[2]))
        key_id = builder.add_new_key(aead.aead_key_templates.AES256_GCM)
        builder.set_primary_key(key_id)
        write(argv[2], builder.keyset_handle())
        print(key_id)
    elif command == "delete-key":
        builder = keyset_builder.from_keyset_handle(read(argv[2]))
        builder.delete_key(int(argv[3]))
        write(argv[2], builder.keyset_handle())
    elif command == "primary-id":
        print(read(argv[2]).keyset_info().primary_key_id)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
