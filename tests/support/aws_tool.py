"""AWS helpers for coffer's tests, on botocore against a moto server.

  bootstrap ENDPOINT       create IAM user `coffer` with an allow-all policy
                           and an access key; print {"access_key_id", "secret_access_key"}
                           (these are the requests moto lets through unsigned)
  kms-key ENDPOINT REGION  create a symmetric KMS key and alias/coffer-test;
                           print {"key_id", "arn"} (signed with AWS_* from the env)
  scan ENDPOINT REGION TABLE
                           print every item of TABLE as JSON lines (values base64)
  sign                     read {method, url, headers, body_b64, region, service,
                           access_key_id, secret_access_key, session_token, amz_date}
                           on stdin;
                           print the Authorization header botocore's SigV4Auth makes
"""
import base64
import datetime
import json
import os
import sys

import botocore.auth
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def client(service, endpoint, region="us-east-1", key=None, secret=None):
    session = botocore.session.get_session()
    return session.create_client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=key or os.environ.get("AWS_ACCESS_KEY_ID", "bootstrap"),
        aws_secret_access_key=secret or os.environ.get("AWS_SECRET_ACCESS_KEY", "bootstrap"),
    )


def bootstrap(endpoint):
    iam = client("iam", endpoint)
    iam.create_user(UserName="coffer")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="coffer", PolicyName="all", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="coffer")["AccessKey"]
    print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}))


def kms_key(endpoint, region):
    kms = client("kms", endpoint, region)
    metadata = kms.create_key(Description="coffer test root key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/coffer-test", TargetKeyId=metadata["KeyId"])
    print(json.dumps({"key_id": metadata["KeyId"], "arn": metadata["Arn"]}))


def scan(endpoint, region, table):
    dynamodb = client("dynamodb", endpoint, region)
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            out = {}
            for name, value in item.items():
                if "B" in value:
                    out[name] = base64.b64encode(value["B"]).decode()
                else:
                    out[name] = next(iter(value.values()))
            print(json.dumps(out))


def sign():
    spec = json.load(sys.stdin)
    request = AWSRequest(
        method=spec["method"],
        url=spec["url"],
        headers=spec["headers"],
        data=base64.b64decode(spec["body_b64"]),
    )
    credentials = Credentials(spec["access_key_id"], spec["secret_access_key"], spec.get("session_token"))
    signer = SigV4Auth(credentials, spec["service"], spec["region"])
    # botocore reads the clock itself: give it the test's fixed time.
    fixed = datetime.datetime.strptime(spec["amz_date"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda: fixed
    signer.add_auth(request)
    print(request.headers["Authorization"])


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"bootstrap": bootstrap, "kms-key": kms_key, "scan": scan, "sign": sign}[command](*args)
