// The TLS shape of an rsock connection under --obfs=tls, in one import: the ClientHello and
// ServerHello+ChangeCipherSpec records that open it, and the application-data record header every
// frame after them wears. Split over files to keep each small; this one only gathers them.
export {
  APP_DATA_HEADER, CCS_RECORD, ContentType, MAX_CIPHERTEXT, MAX_PLAINTEXT, MIN_APP_DATA, RECORD_HEADER,
  readRecordHeader, sniError, writeAppDataHeader,
} from './tls-record';
export type { RecordHeader } from './tls-record';
export { CH_RANDOM_OFF, CH_SESSION_ID_OFF, CLIENT_HELLO_PAD_TO, buildClientHello, parseClientHello } from './tls-client-hello';
export type { ClientHelloInfo, ClientHelloParams } from './tls-client-hello';
export {
  SERVER_HELLO_LEN, SH_KEY_SHARE_OFF, SH_RANDOM_OFF, SH_SESSION_ID_OFF, buildServerHello, parseServerHello,
} from './tls-server-hello';
export type { ServerHelloInfo, ServerHelloParams } from './tls-server-hello';
