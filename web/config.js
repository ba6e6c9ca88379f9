// Where the page connects. `make run` serves its own version of this file
// and `make deploy-web` overwrites it with the deployed wss:// URL; this
// default is the local gateway's.
export default { websocketUrl: "ws://127.0.0.1:3001/prod" };
